"""DDP on CPU (gloo, 2 processes): same validation predictions as one process, checkpoint loads alone."""
import os
import shlex
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import torch
from support.postgres_server import free_port

from data_loader.people import list_train_images
from data_loader.split import stratified_person_split
from helpers import ROOT, scaled, tiny_overrides
from trainer.build import build_trainer
from utils.config import build_config
from utils.run import read_metrics

pytestmark = pytest.mark.slow  # subprocess/DDP/end-to-end runs: `make test` only
GUIDE = "docs/gpus.md"
TIMEOUT = scaled(900)


def odd_val_ratio(demo_data):
    """A val ratio that puts an odd number of images in validation (so 2 ranks need padding)."""
    images = list_train_images(demo_data / "train")
    for ratio in (0.2, 0.25, 0.3, 0.15, 0.35):
        if len(stratified_person_split(images, ratio, 42)[1]) % 2:
            return ratio
    pytest.skip("no odd split found")


@pytest.mark.parametrize("face_crop, age", [(False, "classes"), (True, "classes"), (False, "ordinal")])
def test_two_process_ddp_matches_single_process(demo_data, tmp_path, face_crop, age):
    """...and with `model.age: ordinal` the ranks fit the same age boundaries as one process does."""
    ratio = odd_val_ratio(demo_data)
    extra = {"trainer.epochs": 2, "data.val_ratio": ratio, "data.batch_size": 8, "model.age": age,
             **({"model.head": "multi"} if age == "ordinal" else {})}
    if face_crop:  # the first rank finds the faces, the other waits; both train and validate on the same crops
        shutil.copytree(demo_data, tmp_path / "data")
        demo_data = tmp_path / "data"
        extra["augment.face_crop.margin"] = 0.2
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "train.py", "--config", "configs/demo.yaml", *tiny_overrides(demo_data, tmp_path, **extra)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=scaled(600))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    (run_dir,) = list((tmp_path / "tiny").iterdir())
    log = (run_dir / "train.log").read_text()
    assert "2 process(es)" in log and ("face crop: a face (score >= 0.50, mtcnn) in" in log) == face_crop
    rows = read_metrics(run_dir / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1, 2]

    state = torch.load(run_dir / "last.pth", weights_only=True)   # saved by rank 0, loads alone
    config = build_config(state["config"], "last.pth")
    trainer = build_trainer(config)
    trainer.load_state_dict(state)
    trainer.epoch = 1  # the epoch whose evaluation metrics.csv holds as row 2
    result = trainer.evaluate(trainer.val_loader)
    single = result.metrics
    n_val = len(trainer.val_loader.dataset)
    assert n_val % 2 == 1 and len(result.y_true) == n_val == len(result.probs) == len(result.paths)
    assert single["val_f1"] == rows[1]["val_f1"] and single["val_acc"] == rows[1]["val_acc"]
    assert single["val_loss"] == pytest.approx(rows[1]["val_loss"], rel=1e-5)
    assert [single.get(k) for k in ("val_age_low", "val_age_high")] == \
        [rows[1].get(k) for k in ("val_age_low", "val_age_high")]
    assert ("val_age_low" in single) == (age == "ordinal")
    assert type(trainer.val_loader.dataset.crop).__name__ == ("FaceCrop" if face_crop else "CenterCrop")


def documented_commands(doc: str) -> list[str]:
    return [line for line in (ROOT / doc).read_text().splitlines() if line.startswith("torchrun --nnodes=2 ")]


def multi_node_commands() -> list[list[str]]:
    """The documented two-node command, one per node (docs/gpus.md, the same lines as the README), made to
    run here: nodes are two torchrun agents on 127.0.0.1 with one process each."""
    lines = documented_commands(GUIDE)
    assert len(lines) == 2 and documented_commands("README.md") == lines, "README and docs/gpus.md differ"
    port = free_port()
    return [shlex.split(line.replace("node0:29500", f"127.0.0.1:{port}").replace("--nproc-per-node=8",
                                                                                  "--nproc-per-node=1"))
            for line in lines]


def torchrun(topology: str, extra_args: list[str], cwd=ROOT) -> None:
    """train.py under torchrun as 2 processes: `standalone` (one node) or `two_nodes` (two agents)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if topology == "standalone":
        cmds = [[sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "train.py"]]
    else:
        cmds = [[sys.executable, "-m", "torch.distributed.run", *cmd[1:cmd.index("train.py") + 1]]
                for cmd in multi_node_commands()]
    procs = [subprocess.Popen([*cmd, *extra_args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for cmd in cmds]
    outputs = [proc.communicate(timeout=TIMEOUT)[0] for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), "\n".join(o[-3000:] for o in outputs)


def only_run(root):
    (run_dir,) = list(root.iterdir())  # one run directory: the other ranks and nodes made none
    return run_dir


def test_two_nodes_train_like_one_node_with_two_processes(demo_data, tmp_path):
    args = ["--config", "configs/demo.yaml", *tiny_overrides(demo_data, tmp_path, **{"trainer.epochs": 2,
                                                                                     "data.batch_size": 8})]
    runs = {}
    for topology in ("standalone", "two_nodes"):
        torchrun(topology, [*args, f"save_dir={tmp_path / topology}"])
        runs[topology] = only_run(tmp_path / topology / "tiny")
    for run_dir in runs.values():
        log = (run_dir / "train.log").read_text()
        assert "2 process(es)" in log and "model weights identical on all 2 ranks" in log
        assert {p.name for p in run_dir.glob("*.pth")} == {"best.pth", "last.pth"}
    weights = {t: torch.load(r / "last.pth", weights_only=True)["model"] for t, r in runs.items()}
    assert weights["standalone"].keys() == weights["two_nodes"].keys()
    assert all(torch.equal(weights["standalone"][k], weights["two_nodes"][k]) for k in weights["standalone"])
    metrics = {t: read_metrics(r / "metrics.csv") for t, r in runs.items()}
    assert [r["val_f1"] for r in metrics["standalone"]] == [r["val_f1"] for r in metrics["two_nodes"]]


def test_all_folds_on_two_nodes_match_one_node(demo_data, tmp_path):
    args = ["--config", "configs/demo.yaml", "--all-folds",
            *tiny_overrides(demo_data, tmp_path, **{"data.n_folds": 2, "data.batch_size": 8})]
    oof = {}
    for topology in ("standalone", "two_nodes"):
        torchrun(topology, [*args, f"save_dir={tmp_path / topology}"])
        run_dir = only_run(tmp_path / topology / "tiny")
        assert sorted(p.name for p in (run_dir / "folds").iterdir()) == ["fold_0", "fold_1"]
        assert "2 process(es)" in (run_dir / "folds" / "fold_1" / "train.log").read_text()
        oof[topology] = pd.read_csv(run_dir / "oof.csv")
        assert len(oof[topology]) == 7 * len(pd.read_csv(demo_data / "train" / "train.csv"))
        assert oof[topology]["path"].is_unique
    pd.testing.assert_frame_equal(oof["standalone"], oof["two_nodes"])


def test_seeds_under_torchrun_write_one_parent_and_every_members_predictions_once(demo_data, tmp_path):
    """Every rank trains every seed; rank 0 alone writes the members' val_predictions.csv (each photo once,
    whatever the padding of the last batch) and the parent's seeds_summary.json."""
    ratio = odd_val_ratio(demo_data)
    extra = {"data.val_ratio": ratio, "data.batch_size": 8}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "train.py", "--config", "configs/demo.yaml", "--seeds", "2", *tiny_overrides(demo_data, tmp_path, **extra)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=scaled(600))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    (parent,) = list((tmp_path / "tiny").iterdir())
    assert sorted(p.name for p in (parent / "seeds").iterdir()) == ["seed_42", "seed_43"]
    frames = [pd.read_csv(parent / "seeds" / s / "val_predictions.csv") for s in ("seed_42", "seed_43")]
    n_val = len(stratified_person_split(list_train_images(demo_data / "train"), ratio, 42)[1]) * 7
    assert [len(f) for f in frames] == [n_val, n_val] and all(f["path"].is_unique for f in frames)
    assert (parent / "seeds_summary.json").is_file() and (parent / "report.png").is_file()
