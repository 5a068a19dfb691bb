"""Validation predictions of every run, one split for every training seed, and `train.py --seeds N`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import train
from helpers import ROOT, fails_in_one_line, tiny_overrides
from utils.metrics import macro_f1
from utils.run import read_metrics
from utils.run_dir import PROB_COLUMNS, RunDir


def tiny(demo_data: Path, save_dir: Path, *options: str, **extra: object) -> list[str]:
    return ["--config", str(ROOT / "configs/demo.yaml"), *options, *tiny_overrides(demo_data, save_dir, **extra)]


def val_people(config) -> list[str]:
    from trainer.build import build_loaders
    from utils.dist_info import DistInfo

    _, val = build_loaders(config, DistInfo(), pin_memory=False)
    return sorted(val.dataset.paths)


def test_split_seed_alone_chooses_the_validation_people(demo_data, tmp_path):
    from utils.config import load_config

    def people(**extra):
        return val_people(load_config(ROOT / "configs/demo.yaml", tiny_overrides(demo_data, tmp_path, **extra)))

    pinned = people(seed=1, **{"data.split_seed": 7})
    assert people(seed=2, **{"data.split_seed": 7}) == pinned
    assert people(seed=7) == pinned  # null: the run's seed, so existing recipes keep their split
    assert people(seed=1) != pinned


def test_a_run_keeps_its_models_validation_predictions(demo_data, tmp_path):
    summary = train.main(tiny(demo_data, tmp_path, **{"trainer.epochs": 2}))
    run = RunDir(summary["run_dir"])
    frame = pd.read_csv(run.val_predictions, dtype={"person": str})
    assert list(frame.columns[:4]) == ["path", "person", "label", "pred"] and list(frame.columns[4:]) == PROB_COLUMNS
    assert np.allclose(frame[PROB_COLUMNS].sum(axis=1), 1, atol=1e-5)
    assert (frame["person"] == frame["path"].map(lambda p: Path(p).parent.name)).all()
    assert frame.groupby("person").size().eq(7).all()
    best = next(r for r in read_metrics(run.metrics) if r["epoch"] == summary["best_epoch"])
    written = json.loads(run.summary.read_text())
    assert written["model"] == "best" and written["status"] == "finished"
    assert macro_f1(frame["label"].to_numpy(), frame["pred"].to_numpy()) == pytest.approx(best["val_f1"], abs=1e-6)
    assert written["model_f1"] == pytest.approx(best["val_f1"], abs=1e-6) and 0 < written["model_f1_pm"] < 0.5
    assert not list(run.path.glob("*.tmp"))


@pytest.mark.slow
def test_an_averaging_recipe_keeps_the_averaged_models_predictions(demo_data, tmp_path):
    summary = train.main(tiny(demo_data, tmp_path, **{"trainer.epochs": 3, "trainer.swa": "{epochs: 2, use: true}"}))
    run = RunDir(summary["run_dir"])
    written = json.loads(run.summary.read_text())
    frame = pd.read_csv(run.val_predictions)
    assert written["model"] == "swa"
    assert written["model_f1"] == pytest.approx(macro_f1(frame["label"].to_numpy(), frame["pred"].to_numpy()))


@pytest.mark.slow
def test_seeds_train_members_on_one_split_and_summarise_them(demo_data, tmp_path, capsys):
    from tools import compare, runs

    result = train.main(tiny(demo_data, tmp_path, "--seeds", "2", seed=5, **{"trainer.epochs": 2}))
    parent = RunDir(result["run_dir"])
    members = parent.members()
    assert [m.path.name for m in members] == ["seed_5", "seed_6"]
    summaries = [json.loads(m.summary.read_text()) for m in members]
    assert [s["overrides"][-2:] for s in summaries] == [["seed=5", "data.split_seed=5"],
                                                        ["seed=6", "data.split_seed=5"]]
    frames = [pd.read_csv(m.val_predictions) for m in members]
    assert frames[0]["path"].tolist() == frames[1]["path"].tolist()
    seeds = json.loads(parent.seeds_summary.read_text())
    best = [s["best"] for s in summaries]
    assert seeds["per_seed"] == best and seeds["mean"] == pytest.approx(np.mean(best))
    assert seeds["std"] == pytest.approx(np.std(best, ddof=1))
    assert seeds["model_f1"] == pytest.approx(np.mean([s["model_f1"] for s in summaries]))
    out = compare.main([str(members[0].path), str(parent.path), "--resamples", "200"])[0]
    assert out["seeds"] == [1, 2]
    table = runs.run_table(tmp_path)
    assert table[0]["status"] == "finished" and "±" in runs.render(table)
    assert [r["timestamp"].split("/")[-1] for r in table[1:3]] == ["seed_5", "seed_6"]


@pytest.mark.slow
def test_seeds_with_all_folds_give_each_member_its_oof(demo_data, tmp_path):
    result = train.main(tiny(demo_data, tmp_path, "--seeds", "2", "--all-folds", **{"data.n_folds": 2}))
    parent = RunDir(result["run_dir"])
    oofs = [pd.read_csv(m.oof) for m in parent.members()]
    assert len(oofs) == 2 and oofs[0]["path"].sort_values().tolist() == oofs[1]["path"].sort_values().tolist()
    assert (oofs[0].set_index("path")["fold"] == oofs[1].set_index("path")["fold"]).all()  # one split
    assert "person" in oofs[0] and json.loads(parent.seeds_summary.read_text())["metric"] == "oof_f1"


def test_seeds_refuses_what_it_cannot_do(demo_data, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(tiny(demo_data, tmp_path, "--seeds", "1"))
    assert exit_info.value.code == 2 and "--seeds 1" in capsys.readouterr().err
    fails_in_one_line(train.main, tiny(demo_data, tmp_path, "--seeds", "2", "--all-folds"), capsys, "n_folds")
    assert not (tmp_path / "tiny").exists()


def test_the_runs_model_is_swa_only_when_the_recipe_averages_and_wrote_it(tmp_path, caplog):
    from types import SimpleNamespace

    from trainer.lifecycle import model_weights
    from utils.config import load_config

    averaging = load_config(ROOT / "configs/demo.yaml", ["trainer.swa.use=true", "trainer.swa.epochs=1"])
    trainer = SimpleNamespace(run_dir=RunDir(tmp_path))
    with caplog.at_level("WARNING", logger="trainer.lifecycle"):
        assert model_weights(averaging, trainer) == "best"
    assert "no swa.pth (stopped before its first averaged epoch): val_predictions.csv uses best.pth" in caplog.messages
    RunDir(tmp_path).swa.write_bytes(b"")
    assert model_weights(averaging, trainer) == "swa"
    assert model_weights(load_config(ROOT / "configs/demo.yaml", ["trainer.swa.use=false"]), trainer) == "best"
    assert model_weights(load_config(ROOT / "configs/demo.yaml", ["trainer.swa=null"]), trainer) == "best"


@pytest.mark.parametrize("name", ["val_predictions.csv", "seeds_summary.json"])
def test_the_new_run_files_are_never_an_output(tmp_path, name):
    from utils.errors import UserError
    from utils.outputs import check_outputs

    run = RunDir(tmp_path)
    run.config.write_text("seed: 1\n")
    run.summary.write_text("{}")
    (tmp_path / name).write_text("kept")
    with pytest.raises(UserError, match=f"--out {tmp_path / name}: a file of run directory {tmp_path}"):
        check_outputs({"--out": tmp_path / name})
    assert (tmp_path / name).read_text() == "kept"
    check_outputs({"--out": tmp_path / "submission.csv"})


# the parent run's bookkeeping, without training (seams: made-up members, a recording run_training)
def seeded_members(parent: Path, scores: dict[int, float], model_f1: bool = True) -> RunDir:
    """A repeated run whose members (seed -> monitored score) hold summaries and validation predictions
    of the same 12 people, each member's predictions right with a different probability."""
    from helpers import make_run, noisy, photos

    paths, labels = photos(12)
    for k, (seed, best) in enumerate(scores.items()):
        member = RunDir(make_run(parent / "seeds" / f"seed_{seed}", paths, labels, noisy(labels, 0.5 + 0.1 * k, k)))
        member.summary.write_text(json.dumps({"metric": "val_f1", "best": best,
                                              "model_f1": 0.5 if model_f1 else None}))
    if not (parent / "config.yaml").exists():  # run_seeds writes the parent's own
        (parent / "config.yaml").write_text("seed: 5\ndata: {val_ratio: 0.2}\n")
    return RunDir(parent)


def demo_config(*overrides: str):
    from utils.config import load_config

    return load_config(ROOT / "configs/demo.yaml", list(overrides))


def test_a_member_trains_its_own_seed_on_the_recipes_split():
    from experiments.repeats import member_config

    config = demo_config("seed=5", "trainer.epochs=3")
    member = member_config(config, 9)
    assert member.seed == 9 and member.data.split_seed == 5 and member.split_seed == 5
    assert member.trainer.epochs == 3 and member.data.val_ratio == config.data.val_ratio
    assert config.seed == 5 and config.data.split_seed is None  # the recipe itself is left as it was
    assert member_config(demo_config("seed=5", "data.split_seed=11"), 9).data.split_seed == 11


def test_a_members_score_is_its_monitored_value_or_its_oof_f1(tmp_path):
    from experiments.repeats import member_score

    run = RunDir(tmp_path)
    run.summary.write_text(json.dumps({"metric": "val_f1", "best": 0.61, "model_f1": 0.6}))
    assert member_score(run, all_folds=False) == {"metric": "val_f1", "best": 0.61, "model_f1": 0.6}
    run.folds_summary.write_text(json.dumps({"oof_f1": 0.55}))
    assert member_score(run, all_folds=True) == {"metric": "oof_f1", "best": 0.55, "model_f1": 0.55}


def test_the_seeds_summary_is_the_mean_and_spread_of_its_members(tmp_path, caplog):
    from sklearn.metrics import f1_score

    from experiments.comparison import load_side, mean_interval
    from experiments.repeats import write_seeds_summary

    parent = seeded_members(tmp_path / "run", {5: 0.5, 6: 0.7, 7: 0.65})
    with caplog.at_level("INFO", logger="experiments.repeats"):
        summary = write_seeds_summary(parent, demo_config("seed=5", "name=rep"), [5, 6, 7], all_folds=False)
    assert caplog.messages == [f"3 seeds: val_f1 0.6167 ± 0.1041 (mean ± sd; per seed 0.5000, 0.7000, 0.6500); "
                               f"{parent}"]
    text = parent.seeds_summary.read_text()
    assert json.loads(text) == summary and text.startswith('{\n  "name": "rep"')  # indented: read by people too
    _, low, high = mean_interval(load_side(parent.path))
    assert summary["model_f1_pm"] == pytest.approx((high - low) / 2)
    assert summary["name"] == "rep" and summary["status"] == "finished" and summary["seeds"] == [5, 6, 7]
    assert summary["split_seed"] == 5 and summary["all_folds"] is False and summary["metric"] == "val_f1"
    assert summary["per_seed"] == [0.5, 0.7, 0.65] and summary["mean"] == pytest.approx(0.6166666, abs=1e-6)
    # sample sd by hand: deviations -0.11667, 0.08333, 0.03333; squares sum 0.021667; / (3 - 1); square root
    assert summary["std"] == pytest.approx(0.104083, abs=1e-6)
    f1s = [f1_score(f["label"], f["pred"], average="macro")
           for f in (pd.read_csv(m.val_predictions) for m in parent.members())]
    assert summary["model_f1"] == pytest.approx(np.mean(f1s), abs=1e-9)
    assert 0 < summary["model_f1_pm"] < 0.5 and not list(parent.path.glob(".*.tmp"))


def test_one_seed_has_no_spread_and_members_without_a_model_f1_have_no_interval(tmp_path):
    from experiments.repeats import write_seeds_summary

    parent = seeded_members(tmp_path / "run", {5: 0.5}, model_f1=False)
    summary = write_seeds_summary(parent, demo_config("seed=5"), [5], all_folds=False)
    assert summary["std"] == 0.0 and summary["mean"] == 0.5
    assert "model_f1" not in summary and "model_f1_pm" not in summary
    two = write_seeds_summary(seeded_members(tmp_path / "two", {5: 0.5, 6: 0.6}), demo_config("seed=5"), [5, 6],
                              all_folds=False)
    assert two["std"] == pytest.approx(0.0707107, abs=1e-6)  # |0.5 - 0.6| / sqrt(2): two seeds have a spread


@pytest.mark.parametrize("all_folds", [False, True])
def test_run_seeds_trains_each_seed_into_its_member_then_summarises(tmp_path, monkeypatch, caplog, all_folds):
    from types import SimpleNamespace

    import yaml

    import experiments.repeats as repeats
    from utils.dist_info import DistInfo

    calls, built = [], []
    monkeypatch.setattr(repeats, "seeded_parts", lambda config: built.append(config) or SimpleNamespace(
        dist_info=DistInfo()))
    monkeypatch.setattr(repeats, "check_folds", lambda config: calls.append(("check_folds", config.seed)))
    monkeypatch.setattr(repeats, "checked_report", lambda path: calls.append(("report", path)))

    def trained(kind):
        def train_member(cfg, overrides, *, run_dir, parts):
            calls.append((kind, cfg.seed, cfg.data.split_seed, list(overrides), run_dir.path.name, parts is not None))
            seeded_members(run_dir.path.parent.parent, {cfg.seed: 0.5 + cfg.seed / 100})
        return train_member

    monkeypatch.setattr(repeats, "run_training", trained("train"))
    monkeypatch.setattr(repeats, "run_all_folds", lambda cfg, overrides, **kw: trained("folds")(cfg, overrides, **kw))
    monkeypatch.setattr(repeats, "member_score", lambda member, folds: {
        "metric": "oof_f1" if folds else "val_f1", "best": 0.5, "model_f1": None})
    config = demo_config("seed=5", f"save_dir={tmp_path}", "name=rep", *(["data.n_folds=2"] * all_folds))
    with caplog.at_level("INFO", logger="experiments.repeats"):
        result = repeats.run_seeds(config, 3, ["trainer.epochs=1"], all_folds=all_folds)
    run = Path(result["run_dir"])
    assert [m for m in caplog.messages if m.startswith("seed ")] == [
        f"seed {5 + k} ({k + 1}/3): {run / 'seeds' / f'seed_{5 + k}'}" for k in range(3)]
    kind = "folds" if all_folds else "train"
    assert [c for c in calls if c[0] == kind] == [
        (kind, 5 + k, 5, ["trainer.epochs=1", f"seed={5 + k}", "data.split_seed=5"], f"seed_{5 + k}", k == 0)
        for k in range(3)]
    assert (("check_folds", 5) in calls) == all_folds and calls[-1] == ("report", Path(result["run_dir"]))
    assert len(built) == 1 and built[0].seed == 5 and built[0].data.split_seed == 5
    assert built[0].data.fold == (0 if all_folds else config.data.fold)  # fold 0's parts for a K-fold member
    assert result["seeds"] == [5, 6, 7] and result["metric"] == ("oof_f1" if all_folds else "val_f1")
    written = yaml.safe_load((Path(result["run_dir"]) / "config.yaml").read_text())  # the recipe, split pinned
    assert written["seed"] == 5 and written["data"]["split_seed"] == 5


@pytest.mark.parametrize("n_seeds, seed, message", [(1, 0, "--seeds 1: give at least 2 training seeds"),
                                                     (3, 2**32 - 2, "seed 4294967294 + 2 is past 2**32 - 1"),
                                                     (3, 2**32 - 3, None)])  # the last seed that fits
def test_run_seeds_refuses_too_few_seeds_and_seeds_past_the_range(tmp_path, monkeypatch, n_seeds, seed, message):
    import experiments.repeats as repeats
    from utils.errors import ConfigError

    if message is None:  # past the checks: the first member's parts are built (stopped there by a seam)
        monkeypatch.setattr(repeats, "seeded_parts", lambda config: (_ for _ in ()).throw(ConfigError("built")))
        message = "built"
    with pytest.raises(ConfigError, match=message.replace("*", r"\*").replace("+", r"\+")):
        repeats.run_seeds(demo_config(f"seed={seed}", f"save_dir={tmp_path}"), n_seeds)
    assert list(tmp_path.iterdir()) == []
