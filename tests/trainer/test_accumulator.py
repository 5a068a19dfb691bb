import numpy as np
import torch
from sklearn.metrics import f1_score

from trainer.accumulator import EpochAccumulator
from trainer.monitor import Monitor


def one_hot_logits(preds, n=18):
    return torch.nn.functional.one_hot(torch.tensor(preds), n).float()


def test_epoch_f1_is_over_the_whole_epoch_not_a_batch_mean():
    batches = [([0, 0, 1], [0, 1, 1]), ([2, 2, 0], [2, 0, 0]), ([5, 5, 5], [5, 5, 4])]
    acc = EpochAccumulator()
    per_batch = []
    for preds, targets in batches:
        acc.update(torch.tensor(1.0), one_hot_logits(preds), torch.tensor(targets))
        per_batch.append(f1_score(targets, preds, average="macro", zero_division=0))
    y_pred = sum((p for p, _ in batches), [])
    y_true = sum((t for _, t in batches), [])
    out = acc.compute("val")
    assert out["val_f1"] == f1_score(y_true, y_pred, average="macro", zero_division=0)
    assert abs(out["val_f1"] - np.mean(per_batch)) > 1e-3
    assert out["val_acc"] == np.mean(np.array(y_true) == np.array(y_pred))
    assert set(out) == {"val_loss", "val_acc", "val_f1"}  # the per-task and per-class figures only on request
    assert acc.probs is None  # the logits are kept (for probabilities) only when asked: keep_logits=True


def test_loss_is_weighted_by_batch_size():
    acc = EpochAccumulator()
    acc.update(torch.tensor(1.0), None, torch.zeros(3, dtype=torch.long))
    acc.update(torch.tensor(4.0), None, torch.zeros(1, dtype=torch.long))
    assert acc.compute("train") == {"train_loss": (3 * 1.0 + 4.0) / 4}


def test_monitor_modes_and_patience():
    mon = Monitor("min val_loss")
    assert mon.update(1, {"val_loss": 1.0}) and not mon.update(2, {"val_loss": 1.5})
    assert mon.bad_epochs == 1 and mon.best_epoch == 1
    assert mon.update(3, {"val_loss": 0.5}) and mon.bad_epochs == 0
    mon_max = Monitor("max val_f1")
    mon_max.update(1, {"val_f1": 0.5})
    assert not mon_max.update(2, {"val_f1": 0.4}) and mon_max.best == 0.5


def test_task_f1_from_18_class_predictions():
    from utils.metrics import classification_metrics, task_labels

    y_true = np.array([0, 4, 8, 17, 9])   # (mask, gender, age): 000, 011, 112, 212, 120
    y_pred = np.array([3, 4, 8, 14, 9])   # gender wrong on the first, gender wrong on the fourth
    tasks = task_labels(y_true)
    assert tasks["mask"].tolist() == [0, 0, 1, 2, 1] and tasks["gender"].tolist() == [0, 1, 0, 1, 1]
    out = classification_metrics(y_true, y_pred, detail=True)
    assert out["f1_mask"] == 1.0 and out["f1_age"] == 1.0
    assert out["f1_gender"] == f1_score([0, 1, 0, 1, 1], [1, 1, 0, 0, 1], average="macro")
    assert out["f1_c04"] == 1.0 and out["f1_c00"] == 0.0 and out["f1_c17"] == 0.0
    assert out["f1_c01"] == 0.0  # absent from truth and prediction
    assert len([k for k in out if k.startswith("f1_c")]) == 18


def test_confident_mistakes_ranked_by_confidence():
    from trainer.visual_log import confident_mistakes

    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    y_true = np.array([1, 1, 1, 0])
    assert confident_mistakes(y_true, probs).tolist() == [0, 3, 2]


def test_monitor_starts_empty_a_tie_is_no_improvement_and_its_state_round_trips():
    mon = Monitor("max val_f1")
    assert (mon.best, mon.best_epoch, mon.bad_epochs, mon.mode, mon.metric) == (-np.inf, -1, 0, "max", "val_f1")
    assert Monitor("min val_loss").best == np.inf
    assert mon.update(1, {"val_f1": 0.0, "val_loss": 9.0})  # any first value is the best so far
    assert not mon.update(2, {"val_f1": 0.0}) and not mon.update(3, {"val_f1": -0.1})
    assert mon.state_dict() == {"best": 0.0, "best_epoch": 1, "bad_epochs": 2}
    mon.reset_patience()
    assert mon.bad_epochs == 0 and mon.best_epoch == 1
    other = Monitor("max val_f1")
    other.load_state_dict({"best": 0.7, "best_epoch": 4, "bad_epochs": 3})
    assert (other.best, other.best_epoch, other.bad_epochs) == (0.7, 4, 3)
    assert not other.update(5, {"val_f1": 0.7}) and other.bad_epochs == 4


def test_evaluation_drops_padded_duplicates_and_recomputes_the_loss_once():
    acc = EpochAccumulator(keep_logits=True)
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0]])
    acc.update(torch.tensor(5.0), logits[:2], torch.tensor([0, 2]), indices=torch.tensor([0, 1]))
    acc.update(torch.tensor(7.0), logits[[2, 0]], torch.tensor([2, 0]), indices=torch.tensor([2, 0]))  # 0 again
    out = acc.compute("val", loss_fn=torch.nn.functional.cross_entropy)
    unique_logits, unique_targets = logits, torch.tensor([0, 2, 2])
    assert out["val_loss"] == float(torch.nn.functional.cross_entropy(unique_logits, unique_targets))
    assert out["val_acc"] == 2 / 3 and acc.y_true.tolist() == [0, 2, 2]
    assert np.allclose(acc.probs, logits.softmax(dim=1).numpy())
    without_fn = EpochAccumulator(keep_logits=True)
    without_fn.update(torch.tensor(5.0), logits[:2], torch.tensor([0, 2]), indices=torch.tensor([0, 1]))
    assert without_fn.compute("val")["val_loss"] == 5.0  # the batch means, weighted by batch size
    assert EpochAccumulator().compute("train") == {}


def test_a_rank_without_batches_adds_nothing_to_the_gathered_loss(monkeypatch):
    """Under DDP every rank's (loss sum, count, predictions) are gathered; an idle rank contributes zeros."""
    import trainer.accumulator as accumulator

    busy, idle = EpochAccumulator(), EpochAccumulator()
    busy.update(torch.tensor(2.0), one_hot_logits([1, 1]), torch.tensor([1, 0]))
    shared = {}

    def gather(obj, info):  # rank 0 gathers its own part and the idle rank's
        shared.setdefault("parts", []).append(obj)
        return shared["parts"] if len(shared["parts"]) == 2 else [obj]

    monkeypatch.setattr(accumulator, "gather_objects", gather)
    assert idle.compute("val") == {}  # first: the idle rank's part is stored
    out = busy.compute("val")
    assert out["val_loss"] == 2.0 and out["val_acc"] == 0.5


def test_classes_absent_from_both_sides_score_zero_without_a_warning():
    import warnings

    from utils.metrics import classification_metrics

    y = np.array([0, 0, 7])
    assert set(classification_metrics(y, y)) == {"acc", "f1"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn's UndefinedMetricWarning would fail here
        out = classification_metrics(y, np.array([0, 7, 7]), detail=True)
    assert out["f1_c05"] == 0.0 and out["f1_c00"] == 2 / 3 and out["f1_c07"] == 2 / 3
