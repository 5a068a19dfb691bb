import json
import os
import socket
import subprocess
import sys

import numpy as np

from tools.runs import main, run_table
from utils.logger import rows_to_csv


def fake_run(root, name, stamp, f1s, status, pid=None, monitor=None):
    run = root / name / stamp
    run.mkdir(parents=True)
    rows = [{"epoch": i + 1, "val_f1": f, "val_acc": f + 0.05, "train_loss": 1.0} for i, f in enumerate(f1s)]
    if monitor is not None:  # (metric, values): the monitored metric and its best epoch
        for row, value in zip(rows, monitor[1]):
            row[monitor[0]] = value
    (run / "metrics.csv").write_text(rows_to_csv(rows))
    summary = {"name": name, "backbone": "resnet18", "head": "shallow", "overrides": ["trainer.epochs=3"],
               "epochs": len(f1s), "max_epochs": 3, "status": status, "wall_time": 3725.0,
               "host": socket.gethostname(), "pid": pid if pid is not None else 1}
    if monitor is not None:
        values = monitor[1]
        summary.update(metric=monitor[0], best=max(values), best_epoch=values.index(max(values)) + 1)
    (run / "summary.json").write_text(json.dumps(summary))
    return run


def edit_summary(path, changes):
    """Rewrite the summary.json at `path` with `changes` merged in."""
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_ranked_by_best_f1_and_crash_detected(tmp_path):
    fake_run(tmp_path, "a", "20250101-000000", [0.5, 0.8, 0.7], "finished")
    fake_run(tmp_path, "b", "20250102-000000", [0.6, 0.9], "running", pid=dead_pid())
    fake_run(tmp_path, "c", "20250103-000000", [0.85], "stopped early")
    (tmp_path / "d" / "20250104-000000").mkdir(parents=True)
    (tmp_path / "d" / "20250104-000000" / "config.yaml").write_text("model: {backbone: convnext_atto, head: linear}\n")
    rows = run_table(tmp_path)
    assert [r["name"] for r in rows] == ["b", "c", "a", "d"]
    assert rows[0]["status"] == "crashed" and rows[0]["best_epoch"] == 2
    assert rows[2]["val_f1"] == 0.8 and rows[2]["best_epoch"] == 2 and abs(rows[2]["val_acc"] - 0.85) < 1e-9
    assert rows[2]["wall_time"] == "1:02:05" and rows[2]["epochs"] == "3/3"
    assert rows[3]["status"] == "crashed" and rows[3]["backbone"] == "convnext_atto"


def test_best_epoch_is_the_monitored_metrics_not_the_highest_val_f1(tmp_path):
    # EMA monitor: best.pth holds epoch 3 (ema_val_f1 0.9), though raw val_f1 peaked at epoch 2
    fake_run(tmp_path, "ema", "20250101-000000", [0.5, 0.8, 0.7], "finished",
             monitor=("ema_val_f1", [0.4, 0.6, 0.9]))
    (row,) = run_table(tmp_path)
    assert row["monitor"] == "ema_val_f1" and row["best"] == 0.9 and row["best_epoch"] == 3
    assert row["val_f1"] == 0.7  # val_f1 of the epoch whose weights are best.pth
    assert "ema_val_f1" in main([str(tmp_path)])


def test_running_process_is_running(tmp_path):
    import os

    fake_run(tmp_path, "live", "20250101-000000", [0.5], "running", pid=os.getpid())
    assert run_table(tmp_path)[0]["status"] == "running"


def test_csv_and_markdown_outputs(tmp_path, capsys):
    fake_run(tmp_path, "a", "20250101-000000", [0.5], "finished")
    csv_text = main([str(tmp_path), "--csv"])
    assert csv_text.splitlines()[0].startswith("name,timestamp,backbone")
    assert "0.5000" in csv_text.splitlines()[1]
    md = main([str(tmp_path), "--markdown"])
    assert md.splitlines()[1].startswith("|---|") and "| a |" in md


def test_wandb_enabled_but_missing_is_one_clear_line(demo_data, tmp_path, capsys, monkeypatch):
    import builtins

    import train
    from helpers import ROOT, tiny_overrides

    real_import = builtins.__import__

    def no_wandb(name, *args, **kwargs):
        if name == "wandb":
            raise ImportError("No module named 'wandb'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wandb)
    argv = ["--config", str(ROOT / "configs/demo.yaml"),
            *tiny_overrides(demo_data, tmp_path / "saved", **{"logging.wandb.project": "p"})]
    try:
        train.main(argv)
    except SystemExit as exit_info:
        assert exit_info.code == 2
    else:
        raise AssertionError("expected exit 2")
    err = capsys.readouterr().err
    assert "logging.wandb" in err and "pip install wandb" in err
    assert not (tmp_path / "saved").exists()


def test_wandb_mirrors_scalars_and_images(tmp_path, monkeypatch):
    import numpy as np
    import torch

    from utils.logger import RunLogger

    class FakeRun:
        def __init__(self):
            self.logged, self.finished = [], False

        def log(self, data, step):
            self.logged.append((step, data))

        def finish(self):
            self.finished = True

    fake = FakeRun()
    logger = RunLogger(tmp_path, info={"class_names": []}, wandb_run=fake)
    logger.log_epoch(1, {"val_f1": 0.5, "train_loss": 1.0})
    import sys
    import types

    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(Image=lambda a: ("image", a.shape)))
    logger.add_image("val/confusion_matrix", np.zeros((4, 5, 3), dtype=np.uint8), 1)
    logger.add_image("train/augmented_samples", torch.zeros(3, 4, 5), 0)
    logger.close()
    assert fake.logged[0] == (1, {"f1/val": 0.5, "loss/train": 1.0})
    assert fake.logged[1] == (1, {"val/confusion_matrix": ("image", (4, 5, 3))})
    assert fake.logged[2][1]["train/augmented_samples"] == ("image", (4, 5, 3))
    assert fake.finished


def test_tensorboard_tags_put_ema_beside_raw_and_name_the_rates():
    from utils.logger import tb_tag

    names = [f"c{i}" for i in range(18)]
    assert tb_tag("val_f1") == "f1/val" and tb_tag("ema_val_f1") == "f1/val_ema"
    assert tb_tag("ema_val_loss") == "loss/val_ema" and tb_tag("train_acc") == "top1_accuracy/train"
    assert tb_tag("ema_val_f1_age") == "f1/val_ema_age" and tb_tag("val_f1_mask") == "f1/val_mask"
    assert tb_tag("ema_val_f1_c04", names) == "per_class_f1_val_ema/04 c4"
    assert tb_tag("lr_head") == "lr/head" and tb_tag("lr_backbone") == "lr/backbone"


def test_tensorboard_opens_on_validation_f1_and_the_per_task_f1():
    """TensorBoard orders tag groups and the cards inside a group alphabetically: the first group must be
    macro-F1, with val and the three tasks among its first cards (one screen: two rows of three)."""
    from utils.logger import tb_tag
    from utils.metrics import classification_metrics

    y = np.arange(36) % 18
    metrics = {f"{split}_{k}": v for split, detail in (("train", False), ("val", True))
               for k, v in classification_metrics(y, y, detail=detail).items()}
    metrics.update({"train_loss": 1.0, "val_loss": 1.0, "lr_head": 0.1, "lr_backbone": 0.01, "epoch_time": 3.0})
    tags = sorted(tb_tag(k, [f"c{i}" for i in range(18)]) for k in metrics)
    groups = sorted({t.split("/")[0] for t in tags})
    assert groups[0] == "f1" and "hparams" < groups[1]  # the HParams scalars may come second, nothing else
    first_group = [t for t in tags if t.startswith("f1/")]
    assert {"f1/val", "f1/val_mask", "f1/val_gender", "f1/val_age"} <= set(first_group[:6])


def fake_kfold(root, name="kf", stamp="20250105-000000", n_folds=2, finished=True):
    run = root / name / stamp
    for k in range(n_folds):
        fold = fake_run(run / "folds", f"fold_{k}", "", [0.5 + 0.1 * k], "finished")
        (fold / "best.pth").write_bytes(b"x")
    (run / "config.yaml").write_text("model: {backbone: resnet10t, head: linear}\n")
    if finished:
        (run / "folds_summary.json").write_text(json.dumps({"name": name, "status": "finished", "n_folds": n_folds,
                                                            "oof_f1": 0.777, "fold_f1": {}}))
    return run


def test_a_kfold_run_is_one_row_with_its_folds_below_it(tmp_path):
    fake_run(tmp_path, "a", "20250101-000000", [0.9], "finished")
    fake_kfold(tmp_path)
    fake_run(tmp_path, "z", "20250101-000000", [0.1], "finished")
    rows = run_table(tmp_path)
    assert [(r["name"], r["timestamp"]) for r in rows] == [
        ("a", "20250101-000000"), ("kf", "20250105-000000"), ("kf", "20250105-000000/fold_0"),
        ("kf", "20250105-000000/fold_1"), ("z", "20250101-000000")]
    parent = rows[1]
    assert parent["status"] == "finished" and parent["val_f1"] == 0.777 and parent["epochs"] == "2/2 folds"
    assert parent["monitor"] == "oof_f1" and parent["backbone"] == "resnet10t"
    unfinished = fake_kfold(tmp_path, name="kg", finished=False)
    (row,) = [r for r in run_table(tmp_path) if r["name"] == "kg" and r["parent"] is None]
    assert row["status"] == "stopped" and row["epochs"] == "2/2 folds" and unfinished.is_dir()


def test_the_text_table_fits_120_columns_and_wide_shows_the_rest(tmp_path):
    run = fake_run(tmp_path, "a_rather_long_experiment_name_for_a_run", "20250101-000000", [0.9], "finished")
    summary = json.loads((run / "summary.json").read_text())
    summary["overrides"] = [f"augment.train.{i}.args.p=0.{i}" for i in range(9)]
    (run / "summary.json").write_text(json.dumps(summary))
    fake_kfold(tmp_path)
    text = main([str(tmp_path)])
    assert max(len(line) for line in text.splitlines()) <= 120 and "augment.train" not in text
    assert "  └" in text and "fold_1" in text
    assert "augment.train.8.args.p=0.8" in main([str(tmp_path), "--wide"])


def test_damaged_files_mark_one_run_unreadable_not_the_table(tmp_path):
    good = fake_run(tmp_path, "good", "20250101-000000", [0.9], "finished")
    bad = fake_run(tmp_path, "bad", "20250101-000000", [0.5], "finished")
    (bad / "metrics.csv").write_text("epoch,val_f1\n1,not-a-number\n")
    worse = fake_run(tmp_path, "worse", "20250101-000000", [0.5], "finished")
    (worse / "summary.json").write_text("[1, 2")
    (worse / "config.yaml").write_text("model: [unclosed\n")
    rows = {r["name"]: r for r in run_table(tmp_path)}
    assert rows["good"]["val_f1"] == 0.9 and good.is_dir()
    assert rows["bad"]["status"] == "unreadable (DataError)"
    assert rows["worse"]["status"].startswith("unreadable")


def test_a_kfold_rows_figures_come_from_its_summary_and_its_folds(tmp_path):
    from tools.runs import kfold_row
    from utils.run_dir import RunDir

    run = fake_kfold(tmp_path, n_folds=3)
    (run / "config.yaml").write_text("model: {head: shallow}\n")  # no backbone named
    (run / "folds" / "fold_2" / "best.pth").unlink()  # fold 2 not done yet
    (run / "folds_summary.json").write_text(json.dumps({"n_folds": 3, "oof_f1": 0.7, "oof_f1_pm": 0.03}))
    row = kfold_row(RunDir(run))
    assert (row["name"], row["backbone"], row["head"], row["monitor"]) == ("kf", "", "shallow", "oof_f1")
    assert row["best"] == row["val_f1"] == 0.7 and row["pm"] == 0.03 and row["status"] == "finished"
    assert row["epochs"] == "2/3 folds" and row["wall_time"] == "3:06:15"  # 3 x 3725 s, every fold's time
    summary = json.loads((run / "folds" / "fold_1" / "summary.json").read_text())
    (run / "folds" / "fold_1" / "summary.json").write_text(json.dumps({**summary, "wall_time": None}))
    (run / "folds_summary.json").write_text(json.dumps({"n_folds": 3, "oof_f1": 0.7, "status": "interrupted"}))
    row = kfold_row(RunDir(run))
    assert row["wall_time"] == "2:04:10" and row["status"] == "interrupted" and np.isnan(row["pm"])
    (run / "config.yaml").write_text("model: [resnet18]\n")  # a damaged section names no model
    assert kfold_row(RunDir(run))["backbone"] == ""


def test_a_kfold_run_without_its_summary_is_running_while_a_fold_runs(tmp_path):
    from tools.runs import kfold_row
    from utils.run_dir import RunDir

    run = fake_kfold(tmp_path, n_folds=2, finished=False)
    fold = run / "folds" / "fold_1" / "summary.json"
    edit_summary(fold, {"status": "running", "pid": os.getpid()})
    row = kfold_row(RunDir(run))
    assert row["status"] == "running" and row["epochs"] == "2/2 folds" and np.isnan(row["best"])
    edit_summary(fold, {"status": "stopped early"})
    assert kfold_row(RunDir(run))["status"] == "stopped"
    for k in range(2):
        (run / "folds" / f"fold_{k}" / "summary.json").write_text(json.dumps({"status": "finished"}))
    assert kfold_row(RunDir(run))["wall_time"] == ""  # no fold says how long it took


def test_a_process_id_is_alive_while_its_process_runs(monkeypatch):
    import tools.runs

    assert tools.runs.pid_alive(os.getpid()) and not tools.runs.pid_alive(dead_pid())

    def refused(pid, signal):
        raise PermissionError(pid)  # another user's process: it exists

    monkeypatch.setattr(tools.runs.os, "kill", refused)
    assert tools.runs.pid_alive(1)


def row(name, stamp="20250101-000000", **values):
    """A run-table row as run_table makes it (the columns render reads)."""
    base = {"name": name, "timestamp": stamp, "backbone": "resnet18", "head": "linear", "overrides": "",
            "epochs": "3/3", "monitor": "val_f1", "best": 0.5, "best_epoch": 2, "val_f1": 0.5, "pm": float("nan"),
            "val_acc": 0.6, "wall_time": "0:01:00", "status": "finished", "parent": None, "refit": False}
    return {**base, **values}


def test_the_text_table_is_left_aligned_columns_two_spaces_apart_under_short_headers(tmp_path):
    from tools.runs import render

    rows = [row("a", best=0.9, val_f1=0.8, monitor="ema_val_f1", pm=0.0312),
            row("bb", monitor="oof_f1", best=0.75, val_f1=0.75),
            row("c", best=float("nan"), val_f1=float("nan"), monitor="ema_val_f1", status="unreadable (DataError)",
                best_epoch="", epochs="", wall_time="")]
    assert render(rows) == (
        "name  timestamp        backbone  epochs  best_ep  val_f1  ±       monitored          wall     status\n"
        "a     20250101-000000  resnet18  3/3     2        0.8000  0.0312  0.9000 ema_val_f1  0:01:00  finished\n"
        "bb    20250101-000000  resnet18  3/3     2        0.7500          0.7500             0:01:00  finished\n"
        "c     20250101-000000  resnet18                                                               unreadable\n")


def test_children_sit_under_their_run_a_members_folds_deeper_and_a_refit_by_name(tmp_path):
    from tools.runs import render

    parent = tmp_path / "rep" / "20250101-000000"
    member = parent / "seeds" / "seed_5"
    rows = [row("rep"), row("rep", "20250101-000000/seed_5", parent=str(parent)),
            row("rep", "seed_5/fold_0", parent=str(member)),
            row("rep", "20250102-000000", parent=str(parent), refit=True)]
    lines = render(rows, "text").splitlines()
    assert lines[1].startswith("rep        20250101-000000 ")
    assert lines[2].startswith("  └" + " " * 8 + "seed_5 ") and lines[3].startswith("    └" + " " * 6 + "fold_0 ")
    assert lines[4].startswith("  └ refit  20250102-000000 ")


def test_csv_and_markdown_hold_every_column_and_every_value_whole(tmp_path):
    import csv
    import io

    from tools.runs import COLUMNS, render

    rows = [row("a|b", overrides="trainer.epochs=3 model.head=shallow", status="unreadable (DataError)",
                monitor="ema_val_f1")]
    written = render(rows, "csv")
    assert "\r" not in written and written.endswith("\n")
    header, values = list(csv.reader(io.StringIO(written)))
    assert tuple(header) == COLUMNS
    assert dict(zip(header, values)) == {**{k: str(v) for k, v in rows[0].items() if k in COLUMNS},
                                         "best": "0.5000", "val_f1": "0.5000", "val_acc": "0.6000", "pm": ""}
    markdown = render(rows, "markdown").splitlines()
    assert markdown[0] == "| " + " | ".join(COLUMNS) + " |" and markdown[1] == "|" + "---|" * len(COLUMNS)
    assert markdown[2].startswith("| a\\|b | 20250101-000000 | ") and markdown[2].endswith(
        " | unreadable (DataError) |") and len(markdown) == 3


def test_long_cells_are_cut_to_the_width_with_an_ellipsis():
    from tools.runs import MAX_CELL, short

    assert short("x" * MAX_CELL) == "x" * MAX_CELL
    assert short("x" * (MAX_CELL + 1)) == "x" * (MAX_CELL - 1) + "…"
    assert len(short("y" * 50, width=10)) == 10


def fake_repeated(root, seeds=(5, 6), summary=None):
    run = root / "rep" / "20250106-000000"
    for seed in seeds:
        fake_run(run / "seeds", f"seed_{seed}", "", [0.5 + seed / 100], "finished")
    (run / "config.yaml").write_text("model: {backbone: convnext_atto, head: shallow}\n")
    if summary is not None:
        (run / "seeds_summary.json").write_text(json.dumps(summary))
    return run


def test_a_repeated_runs_row_is_the_mean_and_sd_over_its_seeds(tmp_path):
    from tools.runs import repeated_row
    from utils.run_dir import RunDir

    run = fake_repeated(tmp_path, summary={"name": "recipe", "metric": "ema_val_f1", "mean": 0.61234,
                                           "std": 0.0456, "model_f1_pm": 0.021, "seeds": [5, 6, 7]})
    row = repeated_row(RunDir(run))
    assert (row["name"], row["backbone"], row["head"], row["monitor"]) == ("recipe", "convnext_atto", "shallow",
                                                                           "ema_val_f1")
    assert row["best"] == "0.6123±0.0456" and row["val_f1"] == 0.61234 and row["pm"] == 0.021
    assert row["status"] == "finished" and row["epochs"] == "3 seeds"  # the summary's seeds, not the folders
    (run / "seeds_summary.json").write_text(json.dumps({"mean": 0.6, "std": 0.0, "seeds": [5, 6],
                                                        "status": "interrupted"}))
    row = repeated_row(RunDir(run))
    assert row["name"] == "rep" and row["monitor"] == "" and np.isnan(row["pm"]) and row["status"] == "interrupted"


def test_a_repeated_run_without_its_summary_is_running_while_a_member_runs(tmp_path):
    from tools.runs import repeated_row
    from utils.run_dir import RunDir

    run = fake_repeated(tmp_path, seeds=(5, 6, 7))
    member = run / "seeds" / "seed_6" / "summary.json"
    edit_summary(member, {"status": "running", "pid": os.getpid()})
    row = repeated_row(RunDir(run))
    assert row["status"] == "running" and row["epochs"] == "3 seeds" and np.isnan(row["val_f1"])
    edit_summary(member, {"status": "interrupted"})
    assert repeated_row(RunDir(run))["status"] == "stopped"


def plain(row):
    """A row with NaN as None, so rows compare whole."""
    return {k: None if isinstance(v, float) and np.isnan(v) else v for k, v in row.items()}


def test_a_runs_row_holds_its_summary_and_its_best_epochs_metrics(tmp_path):
    run = fake_run(tmp_path, "exp", "20250101-000000", [0.5, 0.8, 0.7], "finished",
                   monitor=("ema_val_f1", [0.4, 0.6, 0.9]))
    summary = json.loads((run / "summary.json").read_text())
    summary.update(overrides=["seed=3", "trainer.epochs=3"], model_f1_pm=0.0321, wall_time=59.9)
    (run / "summary.json").write_text(json.dumps(summary))
    (row,) = run_table(tmp_path)
    assert plain(row) == {
        "name": "exp", "timestamp": "20250101-000000", "backbone": "resnet18", "head": "shallow",
        "overrides": "seed=3 trainer.epochs=3", "epochs": "3/3", "monitor": "ema_val_f1", "best": 0.9, "best_epoch": 3,
        "val_f1": 0.7, "pm": 0.0321, "val_acc": 0.75, "wall_time": "0:00:59", "status": "finished", "parent": None,
        "path": str(run.resolve()), "refit": False}


def test_a_sparse_summary_falls_back_to_the_config_and_the_highest_val_f1(tmp_path):
    run = fake_run(tmp_path, "exp", "20250101-000000", [0.5, 0.8, 0.7], "finished")
    (run / "summary.json").write_text(json.dumps({"status": "running", "host": socket.gethostname()}))
    (run / "config.yaml").write_text("model: {backbone: convnext_atto, head: linear}\n")
    (row,) = run_table(tmp_path)
    assert plain(row) == {
        "name": "exp", "timestamp": "20250101-000000", "backbone": "convnext_atto", "head": "linear",
        "overrides": "", "epochs": "0/?", "monitor": "val_f1", "best": 0.8, "best_epoch": 2, "val_f1": 0.8,
        "pm": None, "val_acc": 0.8500000000000001, "wall_time": "", "status": "crashed", "parent": None,
        "path": str(run.resolve()), "refit": False}  # running on this host, but no process id: its process is gone


def test_a_best_epoch_missing_from_the_metrics_gives_empty_figures_not_another_epoch(tmp_path):
    from tools.runs import best_row

    rows = [{"epoch": 1, "val_f1": 0.5}, {"epoch": 2, "val_f1": 0.9}]
    assert best_row({"best_epoch": 1}, rows) == rows[0] and best_row({"best_epoch": 3}, rows) == {}
    assert best_row({"best_epoch": 0}, rows) == rows[1] and best_row({}, [{"epoch": 1, "train_loss": 1.0}]) == {}


def test_a_refit_sits_under_its_run_and_a_fold_is_named_after_its_run(tmp_path):
    chosen = fake_run(tmp_path, "exp", "20250101-000000", [0.6], "finished")
    refit = fake_run(tmp_path, "exp", "20250102-000000", [0.5], "finished")
    summary = json.loads((refit / "summary.json").read_text())
    (refit / "summary.json").write_text(json.dumps({**summary, "name": "exp_refit", "refit_of": str(chosen)}))
    rows = {r["timestamp"]: r for r in run_table(tmp_path)}
    assert rows["20250102-000000"]["parent"] == str(chosen) and rows["20250102-000000"]["refit"] is True
    assert rows["20250102-000000"]["name"] == "exp_refit" and rows["20250101-000000"]["refit"] is False
    fake_kfold(tmp_path)
    fold = next(r for r in run_table(tmp_path) if r["timestamp"].endswith("/fold_1"))
    assert fold["name"] == "kf" and fold["parent"] == str((tmp_path / "kf" / "20250105-000000").resolve())


def test_an_unreadable_run_keeps_its_place_with_empty_figures(tmp_path):
    run = fake_run(tmp_path, "bad", "20250101-000000", [0.5], "finished")
    (run / "metrics.csv").write_text("epoch,val_f1\n1,0.5\n2,x\n")  # damaged by hand
    (row,) = run_table(tmp_path)
    assert plain(row) == {
        "name": "bad", "timestamp": "20250101-000000", "backbone": "", "head": "", "overrides": "", "epochs": "",
        "monitor": "", "best": None, "best_epoch": "", "val_f1": None, "pm": None, "val_acc": None, "wall_time": "",
        "status": "unreadable (DataError)", "parent": None, "path": str(run.resolve()), "refit": False}


def test_wall_times_read_as_hours_minutes_seconds():
    from tools.runs import format_seconds

    assert format_seconds(None) == "" and format_seconds(0) == "0:00:00" and format_seconds(59.9) == "0:00:59"
    assert format_seconds(3600 * 61 + 61) == "61:01:01"


def test_figures_a_run_does_not_record_are_empty_not_made_up(tmp_path):
    run = fake_run(tmp_path, "exp", "20250101-000000", [0.5, 0.8], "finished", monitor=("val_f1", [0.5, 0.8]))
    summary = json.loads((run / "summary.json").read_text())
    del summary["head"], summary["name"]
    (run / "summary.json").write_text(json.dumps({**summary, "best_epoch": 5}))  # metrics.csv cut short
    (row,) = run_table(tmp_path)
    assert (row["name"], row["backbone"], row["head"], row["best_epoch"]) == ("exp", "resnet18", "", "")
    assert np.isnan(row["best"]) and np.isnan(row["val_f1"]) and np.isnan(row["val_acc"])
    del summary["backbone"]
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "config.yaml").write_text("seed: 1\n")  # no model section
    (row,) = run_table(tmp_path)
    assert (row["backbone"], row["head"]) == ("", "")


def test_kfold_and_repeated_rows_without_names_or_models_in_their_files(tmp_path):
    from tools.runs import kfold_row, repeated_row
    from utils.run_dir import RunDir

    kfold = fake_kfold(tmp_path)
    (kfold / "config.yaml").write_text("seed: 1\n")
    (kfold / "folds_summary.json").write_text(json.dumps({"n_folds": 0, "oof_f1": 0.7}))
    row = kfold_row(RunDir(kfold))
    assert (row["name"], row["backbone"], row["head"], row["epochs"]) == ("kf", "", "", "2/? folds")
    repeated = fake_repeated(tmp_path)
    (repeated / "config.yaml").write_text("seed: 1\n")
    row = repeated_row(RunDir(repeated))
    assert (row["backbone"], row["head"]) == ("", "")
