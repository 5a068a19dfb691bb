from pathlib import Path

import pytest
import torch

import train
from helpers import ROOT, fails_in_one_line, tiny_overrides
from trainer.build import build_trainer
from utils.config import load_config
from utils.logger import RunLogger
from utils.run import read_metrics

EXTRA = {"trainer.epochs": 2, "scheduler.warmup_epochs": 1, "model.dropout": 0.2}


def weights(path):
    return torch.load(path, weights_only=True)["model"]


@pytest.mark.slow
@pytest.mark.parametrize("age", ["classes", "ordinal"])
def test_two_epochs_equal_one_plus_resume_plus_one(demo_data, tmp_path, age):
    """...the fitted age boundaries of `model.age: ordinal` (a buffer of the weights) included."""
    extra = {**EXTRA, **({"model.head": "multi", "model.age": "ordinal"} if age == "ordinal" else {})}
    straight = train.main(["--config", str(ROOT / "configs" / "demo.yaml"),
                           *tiny_overrides(demo_data, tmp_path / "a", **extra)])

    # The same run interrupted after its first epoch ...
    overrides = tiny_overrides(demo_data, tmp_path / "b", **extra)
    cfg = load_config(ROOT / "configs" / "demo.yaml", overrides)
    run_dir = tmp_path / "b" / "interrupted"
    run_dir.mkdir(parents=True)
    from utils.seed import seed_everything

    seed_everything(cfg.seed)
    logger = RunLogger(run_dir)
    trainer = build_trainer(cfg, run_dir=run_dir, run_logger=logger)
    trainer.run_epoch()
    logger.close()
    assert trainer.epoch == 1 and not trainer.finished
    torch.manual_seed(12345)  # disturb global RNG: resume must restore it
    # ... then resumed in a new process-like call.
    resumed = train.main(["--resume", str(run_dir)])

    assert resumed["epochs"] == straight["epochs"] == 2
    a, b = weights(f"{straight['run_dir']}/last.pth"), weights(run_dir / "last.pth")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rows_a, rows_b = read_metrics(f"{straight['run_dir']}/metrics.csv"), read_metrics(run_dir / "metrics.csv")
    assert [r["epoch"] for r in rows_b] == [1, 2]
    for key in ("train_loss", "val_loss", "val_f1", *(("val_age_low", "val_age_high") if age == "ordinal" else ())):
        assert [r[key] for r in rows_a] == [r[key] for r in rows_b]


def test_resume_of_finished_run_does_nothing(demo_data, tmp_path, caplog):
    done = train.main(["--config", str(ROOT / "configs" / "demo.yaml"), *tiny_overrides(demo_data, tmp_path)])
    last = Path(done["run_dir"]) / "last.pth"
    mtime = last.stat().st_mtime_ns
    again = train.main(["--resume", done["run_dir"]])
    assert again["epochs"] == 1
    assert last.stat().st_mtime_ns == mtime
    assert "already finished" in caplog.text


@pytest.fixture(scope="module")
def finished_run(demo_data, tmp_path_factory) -> Path:
    """One finished 1-epoch run, shared by the tests that must leave it untouched."""
    out = tmp_path_factory.mktemp("finished")
    done = train.main(["--config", str(ROOT / "configs" / "demo.yaml"), *tiny_overrides(demo_data, out)])
    return Path(done["run_dir"])


def files_of(run_dir: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir() if p.is_file()}


@pytest.mark.parametrize("override, key", [
    ("seed=7", "seed"), ("data.val_ratio=0.5", "data.val_ratio"), ("model.head=shallow", "model.head"),
    ("data.age_bounds=[30,58]", "data.age_bounds"), ("augment.image_size=[32,24]", "augment.image_size"),
    ("optimizer.lr=0.5", "optimizer.lr"), ("data.train_dir=/elsewhere", "data.train_dir"),
])
def test_resume_refuses_overrides_that_change_what_the_run_is(finished_run, capsys, override, key):
    run_dir = finished_run
    before = files_of(run_dir)
    fails_in_one_line(train.main, ["--resume", str(run_dir), override, "trainer.epochs=3"], capsys,
                      f"'{override}' would change what the run is ({key})")
    assert files_of(run_dir) == before  # config.yaml, checkpoints, logs untouched


def test_resume_plan_allows_how_the_run_goes_on_and_says_where_it_continues(finished_run):
    from trainer.resume import plan_resume

    plan = plan_resume(finished_run, ["trainer.epochs=3", "data.batch_size=4", "data.num_workers=0"])
    assert plan.config.trainer.epochs == 3 and plan.config.data.batch_size == 4 and not plan.finished
    assert plan.describe() == f"resumed from {plan.source}: epoch 1 done, continuing at 2/3"
    finished = plan_resume(finished_run, [])
    assert finished.finished and "run already finished (1 of 1 epochs done); nothing to do" in finished.describe()


def test_the_finished_rule_is_one_function():
    from utils.run_dir import run_finished

    assert run_finished(epoch=3, epochs=3, stopped_early=False) and run_finished(epoch=1, epochs=3, stopped_early=True)
    assert not run_finished(epoch=2, epochs=3, stopped_early=False)


def test_best_checkpoint_keeps_what_inference_needs_and_no_lock_stays(finished_run, capsys):
    best = torch.load(finished_run / "best.pth", weights_only=True)
    last = torch.load(finished_run / "last.pth", weights_only=True)
    assert "optimizer" not in best and "rng" not in best and {"model", "config", "class_names"} <= set(best)
    assert "optimizer" in last
    assert (finished_run / "best.pth").stat().st_size < (finished_run / "last.pth").stat().st_size
    assert not (finished_run / ".lock").exists()
    fails_in_one_line(train.main, ["--resume", str(finished_run / "best.pth"), "trainer.epochs=2"], capsys,
                      "holds the weights only")


def test_a_damaged_metrics_file_stops_resume_before_anything_is_rewritten(demo_data, tmp_path, capsys):
    done = train.main(["--config", str(ROOT / "configs" / "demo.yaml"), *tiny_overrides(demo_data, tmp_path)])
    run_dir = Path(done["run_dir"])
    (run_dir / "metrics.csv").write_text("epoch,val_f1\n1,0.5\ntwo,garbage\n")
    before = files_of(run_dir)
    fails_in_one_line(train.main, ["--resume", str(run_dir), "trainer.epochs=2"], capsys,
                      "metrics.csv: line 3: not a metrics row")
    assert files_of(run_dir) == before


def test_resuming_a_finished_run_says_so_without_loading_its_checkpoint(finished_run, monkeypatch, caplog):
    """summary.json and config.yaml decide it (no torch needed); with overrides, or a summary that does
    not say finished, the checkpoint decides."""
    import json

    import trainer.resume

    def loaded(*args):
        raise AssertionError("checkpoint loaded")

    monkeypatch.setattr(trainer.resume, "plan_resume", loaded)
    with caplog.at_level("INFO"):
        assert train.main(["--resume", str(finished_run)]) == {"epochs": 1, "run_dir": str(finished_run)}
    assert "run already finished (1 of 1 epochs done); nothing to do" in caplog.text
    with pytest.raises(AssertionError, match="checkpoint loaded"):
        train.main(["--resume", str(finished_run), "trainer.epochs=3"])
    summary = json.loads((finished_run / "summary.json").read_text())
    for status in ("running", "crashed"):
        (finished_run / "summary.json").write_text(json.dumps({**summary, "status": status}))
        try:
            with pytest.raises(AssertionError, match="checkpoint loaded"):
                train.main(["--resume", str(finished_run)])
        finally:
            (finished_run / "summary.json").write_text(json.dumps(summary))


def test_a_run_that_stopped_early_is_described_as_such(finished_run):
    import dataclasses

    from trainer.resume import plan_resume

    plan = plan_resume(finished_run, ["trainer.epochs=5"])
    early = dataclasses.replace(plan, state={**plan.state, "stopped_early": True})
    assert early.finished and early.describe() == f"{plan.source}: run already finished (stopped early); nothing to do"
    assert not plan.finished and "continuing at 2/5" in plan.describe()


def test_changed_keys_names_every_dotted_key_that_differs():
    from trainer.resume import changed_keys

    before = {"seed": 1, "data": {"fold": 0, "n_folds": 5}, "trainer": {"swa": None, "epochs": 3}}
    after = {"data": {"fold": 1, "n_folds": 5, "relabel": "fix.csv"}, "trainer": {"swa": {"epochs": 2}, "epochs": 3},
             "name": "x"}
    assert changed_keys(before, after) == ["data.fold", "data.relabel", "name", "seed", "trainer.swa"]
    assert changed_keys(before, before) == []


def test_check_overrides_allows_whole_sections_and_names_a_change_no_override_made():
    from trainer.resume import RESUME_KEYS, check_overrides
    from utils.errors import ConfigError

    saved = load_config(ROOT / "configs/demo.yaml")
    mirrored = ["logging.wandb={project: p, mode: offline}", "data.num_workers=0"]
    check_overrides(saved, load_config(ROOT / "configs/demo.yaml", mirrored), mirrored, "RUN")  # allowed
    with pytest.raises(ConfigError) as err:  # the seed differs, though no override names it
        check_overrides(saved, load_config(ROOT / "configs/demo.yaml", ["seed=9"]), ["data.num_workers=0"], "RUN")
    assert str(err.value).startswith("--resume RUN: 'seed' would change what the run is (seed); on resume only")
    with pytest.raises(ConfigError) as err:  # an '=' inside the value: the override is still named whole
        check_overrides(saved, load_config(ROOT / "configs/demo.yaml", ["data.train_dir=/x=y"]),
                        ["data.train_dir=/x=y"], "RUN")
    assert str(err.value) == ("--resume RUN: 'data.train_dir=/x=y' would change what the run is (data.train_dir); on "
                              f"resume only {', '.join(RESUME_KEYS)} may change — start a new run for the rest")


def test_a_run_stopped_before_its_first_checkpoint_takes_the_allowed_overrides(tmp_path):
    from trainer.resume import plan_resume
    from utils.config import save_config
    from utils.errors import ConfigError
    from utils.run_dir import RunDir

    run = RunDir(tmp_path / "early")
    run.path.mkdir()
    save_config(load_config(ROOT / "configs/demo.yaml", ["trainer.epochs=2"]), run.config)
    plan = plan_resume(run.path, ["trainer.epochs=5", "data.num_workers=1"])
    assert (plan.config.trainer.epochs, plan.config.data.num_workers, plan.state) == (5, 1, None)
    assert plan.describe() == f"{run}: stopped before its first checkpoint; starting it again in the same directory"
    with pytest.raises(ConfigError) as refused:
        plan_resume(run.path, ["seed=3"])
    assert str(refused.value).startswith(f"--resume {run}: 'seed=3' would change what the run is (seed)")


def test_resuming_a_checkpoint_names_it_in_every_line_and_leaves_its_state_as_read(tmp_path):
    """plan_resume on a hand-made last.pth (no training): the plan, its refusals and a bad stored config all
    name the checkpoint; the overrides change the plan's config, not the state that was read."""
    from trainer.resume import plan_resume
    from utils.errors import ConfigError

    run = tmp_path / "run"
    run.mkdir()
    raw = load_config(ROOT / "configs/demo.yaml", ["trainer.epochs=2"]).to_dict()
    state = {"model": {}, "config": raw, "class_names": [], "optimizer": {}, "epoch": 1, "stopped_early": False}
    torch.save(state, run / "last.pth")
    plan = plan_resume(run, ["trainer.epochs=4"])
    assert (plan.source, plan.run_dir.path, plan.config.trainer.epochs) == (str(run / "last.pth"), run, 4)
    assert plan.state["config"]["trainer"]["epochs"] == 2
    assert plan.describe() == f"resumed from {run / 'last.pth'}: epoch 1 done, continuing at 2/4"
    with pytest.raises(ConfigError) as refused:
        plan_resume(run, ["seed=9"])
    assert str(refused.value).startswith(f"--resume {run / 'last.pth'}: 'seed=9' would change what the run is")
    with pytest.raises(ConfigError) as bad_override:
        plan_resume(run, ["trainer.epochs=-1"])
    assert str(bad_override.value).startswith("override 'trainer.epochs=-1': trainer.epochs: ")
    torch.save({**state, "config": {**raw, "trainer": {**raw["trainer"], "epochz": 3}}}, run / "last.pth")
    with pytest.raises(ConfigError) as bad_stored:
        plan_resume(run, [])
    assert str(bad_stored.value).startswith(f"{run / 'last.pth'}: trainer.epochz: unknown key")
