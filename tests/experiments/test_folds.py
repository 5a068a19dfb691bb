import pandas as pd
import pytest

import inference
import train
from data_loader.split import stratified_person_folds
from helpers import ROOT, fake_images, hand_strata, tiny_overrides
from utils.metrics import macro_f1


def test_person_folds_partition_and_stratify():
    images = fake_images(500)
    folds = stratified_person_folds(images, 5, seed=0)
    assert set(folds) == set(images["person_id"]) and set(folds.values()) == set(range(5))
    strata = hand_strata(images)  # not person_strata
    for _, members in strata.groupby(strata):
        per_fold = pd.Series([folds[p] for p in members.index]).value_counts().reindex(range(5), fill_value=0)
        assert per_fold.max() - per_fold.min() <= 1
    assert stratified_person_folds(images, 5, 0) == folds != stratified_person_folds(images, 5, 1)


def test_fold_config_validated():
    from utils.config import load_config
    from utils.errors import ConfigError

    with pytest.raises(ConfigError, match="n_folds"):
        load_config(None, ["data.n_folds=5", "data.fold=5"])


@pytest.mark.slow
def test_all_folds_writes_oof_and_inference_uses_every_fold(demo_data, tmp_path):
    result = train.main(["--config", str(ROOT / "configs/demo.yaml"), "--all-folds",
                         *tiny_overrides(demo_data, tmp_path, **{"data.n_folds": 2})])
    run_dir = tmp_path / "tiny" / result["run_dir"].rsplit("/", 1)[1]
    assert sorted(p.name for p in (run_dir / "folds").iterdir()) == ["fold_0", "fold_1"]
    oof = pd.read_csv(run_dir / "oof.csv")
    n_images = 7 * len(pd.read_csv(demo_data / "train" / "train.csv"))
    assert len(oof) == n_images and oof["path"].is_unique and set(oof["fold"]) == {0, 1}
    assert result["oof_f1"] == pytest.approx(macro_f1(oof["label"].to_numpy(), oof["pred"].to_numpy()))
    people_folds = oof.assign(person=oof["path"].str.split("/").str[-2]).groupby("person")["fold"].nunique()
    assert (people_folds == 1).all()

    out = inference.main(["--ckpt", str(run_dir)])
    assert out == run_dir / "submission.csv"
    info = pd.read_csv(demo_data / "eval" / "info.csv", dtype=str)
    assert pd.read_csv(out, dtype={"ImageID": str})["ImageID"].tolist() == info["ImageID"].tolist()
    with pytest.raises(SystemExit):
        inference.main(["--ckpt", str(run_dir), "--weights", "1", "2"])


@pytest.mark.slow
def test_weighted_vote_per_ckpt_argument(demo_data, tmp_path):
    import numpy as np
    import torch

    from helpers import predict_with

    runs = [train.main(["--config", str(ROOT / "configs/demo.yaml"),
                        *tiny_overrides(demo_data, tmp_path, seed=s, name=f"r{s}")])["run_dir"] for s in (1, 2)]
    cpu = torch.device("cpu")
    single = [predict_with([r], eval_dir=demo_data / "eval", device=cpu)[1] for r in runs]
    weighted = predict_with(runs, eval_dir=demo_data / "eval", device=cpu, weights=[3, 1])[1]
    np.testing.assert_allclose(weighted, 0.75 * single[0] + 0.25 * single[1], rtol=1e-5, atol=1e-6)


def test_every_fold_starts_from_the_weights_its_seed_gives(demo_data, tmp_path, monkeypatch):
    """Fold 0's parts are built before the run directory exists; they must still be built right after
    seeding, so fold 0 of --all-folds equals fold 0 trained alone (and on one or several nodes)."""
    import torch

    from experiments import folds
    from trainer.lifecycle import seeded_parts
    from utils.config import load_config

    config = load_config(ROOT / "configs/demo.yaml", tiny_overrides(demo_data, tmp_path, **{"data.n_folds": 2}))
    started = {}

    def capture(cfg, *, parts=None, **_):
        parts = parts if parts is not None else seeded_parts(cfg)
        started[cfg.data.fold] = {k: v.clone() for k, v in parts.model.state_dict().items()}
        raise KeyboardInterrupt  # enough: only the starting weights are compared

    monkeypatch.setattr(folds, "run_training", capture)
    torch.manual_seed(123)  # whatever the process drew before
    with pytest.raises(KeyboardInterrupt):
        folds.run_all_folds(config)
    alone = seeded_parts(folds.fold_config(config, 0)).model.state_dict()
    assert all(torch.equal(alone[k], started[0][k]) for k in alone)


def fold_result(labels, preds, fold):
    """An EvalResult whose argmax is `preds` (probabilities 0.6 / 0.4 / 17)."""
    import numpy as np

    from trainer.trainer import EvalResult

    probs = np.full((len(labels), 18), 0.4 / 17)
    probs[np.arange(len(preds)), preds] = 0.6
    return EvalResult(metrics={}, y_true=np.asarray(labels), probs=probs,
                      paths=[f"f{fold}/img{i}.jpg" for i in range(len(labels))])


def write_fold(run_dir, labels, preds, fold):
    """A fold directory holding the val_predictions.csv its run wrote."""
    from utils.predictions import predictions_frame, write_predictions

    result = fold_result(labels, preds, fold)
    run_dir.path.mkdir(parents=True, exist_ok=True)
    write_predictions(run_dir.val_predictions, predictions_frame(result.paths, result.y_true, result.probs))


def test_fold_config_changes_the_fold_and_nothing_else():
    from experiments.folds import fold_config
    from utils.config import load_config

    config = load_config(ROOT / "configs/demo.yaml", ["data.n_folds=4"])
    moved = fold_config(config, 3)
    assert moved.data.fold == 3 and config.data.fold == 0
    assert moved.model_dump() == {**config.model_dump(), "data": {**config.data.model_dump(), "fold": 3}}


def test_oof_frame_and_scores_against_sklearn(tmp_path, caplog):
    import json

    from sklearn.metrics import f1_score

    from experiments.folds import oof_frame, write_oof
    from utils.config import load_config
    from utils.run_dir import PROB_COLUMNS, RunDir

    labels = [[0, 1, 2, 2, 7], [7, 7, 1, 0]]
    preds = [[0, 1, 1, 2, 7], [7, 0, 1, 0]]
    for k, (y, p) in enumerate(zip(labels, preds)):
        write_fold(RunDir(tmp_path / f"fold_{k}"), y, p, k)
    frames = [oof_frame(RunDir(tmp_path / f"fold_{k}"), k) for k in range(2)]
    assert list(frames[1].columns) == ["path", "fold", "person", "label", "pred", *PROB_COLUMNS]
    assert frames[1]["pred"].tolist() == preds[1] and (frames[1]["fold"] == 1).all()
    assert frames[0]["path"].tolist()[:2] == ["f0/img0.jpg", "f0/img1.jpg"]
    assert frames[1][PROB_COLUMNS].to_numpy() == pytest.approx(fold_result(labels[1], preds[1], 1).probs)
    config = load_config(ROOT / "configs/demo.yaml", ["data.n_folds=2", "name=oofs", "trainer.swa=null"])
    run_dir = RunDir(tmp_path)
    with caplog.at_level("INFO", logger="experiments.folds"):
        out = write_oof(run_dir, config, frames)
    written = pd.read_csv(run_dir.oof)
    assert list(written.columns) == ["path", "fold", "person", "label", "pred", *PROB_COLUMNS]  # no index column
    assert written["label"].tolist() == labels[0] + labels[1] and len(written) == 9
    pooled = f1_score(labels[0] + labels[1], preds[0] + preds[1], average="macro")
    per_fold = [f1_score(y, p, average="macro") for y, p in zip(labels, preds)]
    summary = json.loads(run_dir.folds_summary.read_text())
    assert summary["oof_f1"] == pytest.approx(pooled) and summary["oof_images"] == 9
    assert [summary["fold_f1"][k] for k in ("0", "1")] == pytest.approx(per_fold)
    assert summary["weights"] == "best" and summary["n_folds"] == 2 and summary["status"] == "finished"
    assert out["mean_fold_f1"] == pytest.approx(sum(per_fold) / 2) and summary["name"] == "oofs"
    assert run_dir.folds_summary.read_text().count("\n") > 8  # indented: people read it
    assert (f"out-of-fold macro-F1 {pooled:.4f} over 9 images (folds: {per_fold[0]:.4f}, {per_fold[1]:.4f}); "
            f"{run_dir.oof}") in caplog.messages


def test_all_folds_trains_each_fold_in_its_folder_then_pools(tmp_path, monkeypatch, caplog):
    """The loop's glue without training: fold k gets data.fold=k, its own folder, fold 0's prebuilt
    parts only; oof.csv pools the folds' val_predictions.csv in order."""
    from types import SimpleNamespace

    from experiments import folds
    from utils.config import load_config
    from utils.dist_info import DistInfo
    from utils.errors import ConfigError

    config = load_config(ROOT / "configs/demo.yaml", [f"save_dir={tmp_path}", "name=f", "data.n_folds=3",
                                                      "trainer.swa.use=true", "trainer.swa.epochs=1"])
    prebuilt = SimpleNamespace(dist_info=DistInfo())
    built_for = []
    monkeypatch.setattr(folds, "seeded_parts", lambda cfg: built_for.append(cfg.data.fold) or prebuilt)
    calls = []

    def run_training(cfg, *, overrides, run_dir, parts):
        calls.append((cfg.data.fold, list(overrides), run_dir.path, parts))
        fold = cfg.data.fold
        write_fold(run_dir, [fold] * 2, [fold, 5 if fold != 1 else fold], fold)
        return None, SimpleNamespace(run_dir=run_dir, fold=fold)

    monkeypatch.setattr(folds, "run_training", run_training)
    with caplog.at_level("INFO", logger="experiments.folds"):
        out = folds.run_all_folds(config, overrides=["trainer.epochs=2"])
    run_dir = folds.RunDir(out["run_dir"])
    assert [c[0] for c in calls] == [0, 1, 2]
    assert [c[1] for c in calls] == [["trainer.epochs=2", f"data.fold={k}"] for k in range(3)]
    assert [c[2] for c in calls] == [run_dir.fold(k).path for k in range(3)]
    assert calls[0][3] is prebuilt and calls[1][3] is None and calls[2][3] is None and built_for == [0]
    assert all(f"fold {k + 1}/3: {run_dir.fold(k)}" in caplog.messages for k in range(3))
    oof = pd.read_csv(run_dir.oof)
    assert oof["fold"].tolist() == [0, 0, 1, 1, 2, 2]
    assert oof["pred"].tolist() == [0, 5, 1, 1, 2, 5]  # each fold's own predictions, in fold order
    assert out["weights"] == "swa" and run_dir.config.is_file()
    with pytest.raises(ConfigError, match=r"^--all-folds needs data.n_folds >= 2 \(e.g. data.n_folds=5\)$"):
        folds.run_all_folds(config.model_copy(update={"data": config.data.model_copy(update={"n_folds": 1})}))


def test_other_ranks_train_every_fold_but_write_no_oof(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from experiments import folds
    from utils.config import load_config
    from utils.dist_info import DistInfo
    from utils.run_dir import RunDir

    config = load_config(ROOT / "configs/demo.yaml", [f"save_dir={tmp_path}", "data.n_folds=2"])
    shared = RunDir(tmp_path / "shared")
    monkeypatch.setattr(folds, "seeded_parts", lambda cfg: SimpleNamespace(dist_info=DistInfo(rank=1, world_size=2)))
    monkeypatch.setattr(folds, "shared_run_dir", lambda cfg, info, run_dir=None: shared)
    trained = []
    monkeypatch.setattr(folds, "run_training", lambda cfg, **kw: (trained.append(cfg.data.fold), SimpleNamespace(
        run_dir=kw["run_dir"], fold=cfg.data.fold)))
    assert folds.run_all_folds(config) == {"run_dir": str(shared)}
    assert trained == [0, 1] and not shared.oof.exists() and not shared.config.exists()
