import pandas as pd
import pytest

import inference
import train
from data_loader.split import person_strata, stratified_person_folds
from helpers import ROOT, fake_images, tiny_overrides
from utils.metrics import macro_f1


def test_person_folds_partition_and_stratify():
    images = fake_images(500)
    folds = stratified_person_folds(images, 5, seed=0)
    assert set(folds) == set(images["person_id"]) and set(folds.values()) == set(range(5))
    strata = person_strata(images)
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

    from predict.predictor import ensemble_predict

    runs = [train.main(["--config", str(ROOT / "configs/demo.yaml"),
                        *tiny_overrides(demo_data, tmp_path, seed=s, name=f"r{s}")])["run_dir"] for s in (1, 2)]
    cpu = torch.device("cpu")
    single = [ensemble_predict([r], eval_dir=demo_data / "eval", device=cpu)[1] for r in runs]
    weighted = ensemble_predict(runs, eval_dir=demo_data / "eval", device=cpu, weights=[3, 1])[1]
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
