"""trainer.soup: the greedy soup's candidates and its keep/reject rule, against hand-made scores and weights."""
import json
import logging

import pytest
import torch
from torch import nn

from helpers import toy_trainer
from trainer.soup import Soup, average
from utils.config import SoupConfig


def constant(value: float) -> nn.Module:
    """A layer whose every weight and bias is `value`."""
    layer = nn.Linear(2, 2)
    nn.init.constant_(layer.weight, value)
    nn.init.constant_(layer.bias, value)
    return layer


def offered(scores, top_k=2, mode="max"):
    soup = Soup(SoupConfig(top_k=top_k), mode)
    for epoch, score in enumerate(scores, start=1):
        soup.offer(epoch, score, constant(float(epoch)))
    return soup


def test_only_the_top_k_epochs_are_kept_and_as_copies():
    assert offered([0.1, 0.5, 0.3, 0.4]).ranked() == [2, 4]
    assert offered([0.1, 0.5, 0.3, 0.4], mode="min").ranked() == [1, 3]
    assert offered([0.5, float("nan"), 0.5, 0.2], top_k=3).ranked() == [1, 3, 4]  # NaN never; ties: earlier first
    soup, layer = Soup(SoupConfig(top_k=2)), constant(1.0)
    soup.offer(1, 0.9, layer)
    nn.init.constant_(layer.weight, 5.0)  # training goes on
    assert torch.all(soup.weights[1]["weight"] == 1.0)


def test_averaging_means_floats_and_keeps_the_first_counter():
    a = {"w": torch.tensor([1.0, 3.0]), "n": torch.tensor(4)}
    b = {"w": torch.tensor([3.0, 5.0]), "n": torch.tensor(9)}
    out = average([a, b])
    assert torch.equal(out["w"], torch.tensor([2.0, 4.0])) and out["n"].item() == 4


def test_an_epoch_joins_the_soup_only_if_validation_does_not_get_worse(caplog):
    """Epochs 1, 2, 3 (weights 1, 2, 3) ranked 1 > 2 > 3. Validation of a soup is a function of its weight:
    1 -> 0.90 alone, mean(1, 2) = 1.5 -> 0.95 (kept), mean(1, 2, 3) = 2 -> 0.85 (rejected)."""
    soup = offered([0.90, 0.80, 0.70], top_k=3)
    by_weight = {1.5: 0.95, 2.0: 0.85}
    tried = []

    def evaluate(net):
        tried.append(net.weight.mean().item())
        return by_weight[tried[-1]]
    with caplog.at_level(logging.INFO, logger="trainer.soup"):
        net, ingredients, score = soup.cook(constant(0.0), evaluate, [], torch.device("cpu"))
    assert tried == [1.5, 2.0] and ingredients == [1, 2] and score == 0.95
    assert torch.all(net.weight == 1.5) and torch.all(net.bias == 1.5)
    assert caplog.messages == ["soup: epoch 2 (0.8000 alone) added: 0.9500 with it, 0.9000 without",
                               "soup: epoch 3 (0.7000 alone) left out: 0.8500 with it, 0.9500 without"]


def test_a_tie_is_kept_and_a_loss_monitor_wants_it_lower():
    soup = offered([0.9, 0.8], top_k=2)
    assert soup.cook(constant(0.0), lambda net: 0.9, [], torch.device("cpu"))[1] == [1, 2]
    low = offered([0.2, 0.3], top_k=2, mode="min")
    assert low.cook(constant(0.0), lambda net: 0.25, [], torch.device("cpu"))[1] == [1]


def test_a_tie_joins_under_a_loss_monitor_too_and_a_lone_best_keeps_its_own_weights():
    low = offered([0.2, 0.3], top_k=2, mode="min")
    assert low.cook(constant(0.0), lambda net: 0.2, [], torch.device("cpu"))[1] == [1, 2]
    model = constant(0.0)
    net, ingredients, _ = offered([0.2, 0.3], top_k=2, mode="min").cook(model, lambda net: 0.25, [],
                                                                        torch.device("cpu"))
    assert ingredients == [1] and torch.all(net.weight == 1.0)  # epoch 1's weights, not the rejected mix
    assert net is not model and torch.all(model.weight == 0.0)  # the training model is left as it was


def test_averaging_keeps_each_tensors_precision():
    out = average([{"w": torch.tensor([1.0, 2.0], dtype=torch.float16)},
                   {"w": torch.tensor([2.0, 4.0], dtype=torch.float16)}])
    assert out["w"].dtype == torch.float16 and torch.equal(out["w"], torch.tensor([1.5, 3.0], dtype=torch.float16))


def batchnorm_net(value: float) -> nn.Module:
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    nn.init.constant_(net[0].weight, 0.0)
    nn.init.constant_(net[0].bias, value)  # the BatchNorm sees `value` in every feature
    net[1].running_mean.fill_(value)
    return net


@pytest.mark.parametrize("bn_update", [True, False])
def test_each_tried_soup_gets_batchnorm_statistics_of_its_own_weights_when_asked(bn_update):
    """Epochs with biases 1 and 3 average to 2: recomputed on the loader, the BatchNorm's running mean is what
    the averaged layer outputs (2); without `bn_update` it is the mean of the epochs' running means (also 2,
    so the kept epochs' statistics are set to 10 and 30 to tell the two apart)."""
    soup = Soup(SoupConfig(top_k=2, bn_update=bn_update))
    for epoch, (bias, stat) in enumerate(((1.0, 10.0), (3.0, 30.0)), start=1):
        net = batchnorm_net(bias)
        net[1].running_mean.fill_(stat)
        soup.offer(epoch, 1.0 - epoch / 10, net)
    seen = []
    loader = [torch.randn(4, 2) for _ in range(3)]
    net, ingredients, _ = soup.cook(batchnorm_net(0.0), lambda n: seen.append(n[1].running_mean.clone()) or 1.0,
                                    loader, torch.device("cpu"))
    assert ingredients == [1, 2]
    expected = 2.0 if bn_update else 20.0
    assert torch.allclose(seen[0], torch.full((2,), expected)) and torch.allclose(net[1].running_mean, seen[0])


def test_the_trainer_writes_soup_pth_and_reports_its_epochs_and_score(tmp_path, caplog):
    trainer = toy_trainer(tmp_path, scores=[0.2, 0.6, 0.4, 0.5], epochs=4, soup=SoupConfig(top_k=3))
    with caplog.at_level(logging.INFO):
        summary = trainer.fit()
    assert sorted(trainer.soup.scores) == [2, 3, 4] and trainer.soup.ranked()[0] == 2
    state = torch.load(tmp_path / "soup.pth", weights_only=True)
    assert state["ema"] is None and "optimizer" not in state
    assert 2 in summary["soup_epochs"]  # the best epoch always starts the soup
    assert summary["soup_val_f1"] == trainer.soup_metrics["soup_val_f1"]
    assert any(m.startswith("soup: epoch") and "soup_val_f1" in m for m in caplog.messages)
    json.dumps(summary)  # the summary stays JSON


def test_a_resumed_soup_says_it_draws_on_the_later_epochs_only(tmp_path):
    first = toy_trainer(tmp_path / "a", scores=[0.2, 0.6, 0.4, 0.5], epochs=4, soup=SoupConfig(top_k=2))
    first.run_epoch()
    resumed = toy_trainer(tmp_path / "b", scores=[0.2, 0.6, 0.4, 0.5], epochs=4, soup=SoupConfig(top_k=2))
    resumed.load_state_dict(first.state_dict())
    assert resumed.soup.since_epoch == 1 and not resumed.soup.scores
    resumed.soup.scores = {2: 0.6, 3: 0.5}
    assert resumed.soup.describe([2], 0.6, "soup_val_f1", 0.6) == (
        "soup: epoch 2 alone: each of the other 1 best (epochs after 1 only: the run was resumed) made validation "
        "worse; soup_val_f1 0.6000 (best epoch alone 0.6000; optimistic, chosen on these people)")
    assert resumed.soup.describe([2, 3], 0.62, "soup_val_f1", 0.6).startswith(
        "soup: epochs 2, 3 of the 2 best (epochs after 1 only: the run was resumed) averaged; soup_val_f1 0.6200")


@pytest.mark.parametrize(("overrides", "message"), [
    ({"trainer.soup": "{use: true}", "trainer.swa": "{use: true}"}, "the run has one model"),
    ({"trainer.soup": "{top_k: 3}", "data.val_ratio": 0}, "no validation set"),
    ({"trainer.soup": "{top_k: 3}", "trainer.monitor": "'min train_loss'"}, "monitor a validation metric"),
    ({"trainer.soup": "{top_k: 1}"}, "top_k"),
])
def test_a_soup_that_could_not_do_what_it_says_is_refused(overrides, message):
    from helpers import ROOT
    from utils.config import load_config
    from utils.errors import ConfigError

    with pytest.raises(ConfigError) as error:
        load_config(ROOT / "configs/demo.yaml", [f"{k}={v}" for k, v in overrides.items()])
    assert message in str(error.value) and "\n" not in str(error.value)


def test_offer_says_whether_it_kept_the_epoch_and_a_soup_is_for_a_higher_is_better_metric_by_default():
    soup = Soup(SoupConfig(top_k=2))
    assert soup.offer(1, 0.1, constant(1.0)) is True and soup.offer(2, 0.5, constant(2.0)) is True
    assert soup.offer(3, float("nan"), constant(3.0)) is False
    assert soup.offer(4, 0.1, constant(4.0)) is False  # no better than the worst kept (a tie stays out)
    assert soup.offer(5, 0.3, constant(5.0)) is True and soup.ranked() == [2, 5]


def test_the_soup_line_names_its_epochs_and_says_when_the_run_was_resumed():
    fresh = Soup(SoupConfig(top_k=3))
    for epoch, score in ((1, 0.8), (2, 0.85), (3, 0.7)):
        fresh.offer(epoch, score, constant(float(epoch)))
    assert fresh.describe([1, 2], 0.9, "val_f1", 0.85) == (
        "soup: epochs 1, 2 of the 3 best averaged; val_f1 0.9000 (best epoch alone 0.8500; optimistic, chosen on "
        "these people)")
    assert fresh.describe([2], 0.85, "val_f1", 0.85).startswith(
        "soup: epoch 2 alone: each of the other 2 best made validation worse; val_f1 0.8500")
    resumed = Soup(SoupConfig(top_k=3), since_epoch=4)
    resumed.offer(5, 0.8, constant(1.0))
    resumed.offer(6, 0.7, constant(2.0))
    assert resumed.describe([5, 6], 0.81, "val_f1", 0.8).startswith(
        "soup: epochs 5, 6 of the 2 best (epochs after 4 only: the run was resumed) averaged; val_f1 0.8100")
