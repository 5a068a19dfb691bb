"""The W&B mirror against the real `wandb` package, offline (no network): what a run sends is read back from
the offline run's own files (`run-<id>.wandb`, a LevelDB-style log of protobuf records)."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

import train
from helpers import ROOT, fails_in_one_line, tiny_overrides
from utils.run import read_metrics
from utils.run_dir import RunDir

wandb = pytest.importorskip("wandb")

BLOCK, HEADER = 32768, 7  # the record log's block size; the file starts with ":W&B", a magic and a version


def wandb_records(path: Path) -> list:
    """Every record of an offline run file, in order (FULL/FIRST/MIDDLE/LAST chunks joined)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", data[:HEADER]
    records, pos, pending = [], HEADER, b""
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:  # a block's tail too short for a chunk header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def history(records: list) -> dict[str, dict[int, float]]:
    """metric -> {step: value} of the history records."""
    out: dict[str, dict[int, float]] = {}
    for record in records:
        if record.WhichOneof("record_type") == "history":
            items = {"/".join(i.nested_key) or i.key: i.value_json for i in record.history.item}
            step = int(json.loads(items.pop("_step")))
            for key, value in items.items():
                if not key.startswith("_"):
                    out.setdefault(key, {})[step] = value
    return out


def test_a_run_mirrors_its_config_metrics_report_and_predictions_offline(demo_data, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    mirrored = {"trainer.epochs": 2, "logging.wandb": "{project: p, mode: offline}"}
    overrides = tiny_overrides(demo_data, tmp_path, **mirrored)
    run = RunDir(train.main(["--config", str(ROOT / "configs/demo.yaml"), *overrides])["run_dir"])
    wandb.teardown()  # the service flushes the run file
    (offline,) = (run.path / "wandb").glob("offline-run-*")
    records = wandb_records(next(offline.glob("run-*.wandb")))
    kinds = [r.WhichOneof("record_type") for r in records]
    assert "run" in kinds and "history" in kinds
    config = {u.key: json.loads(u.value_json) for r in records if r.WhichOneof("record_type") == "run"
              for u in r.run.config.update}
    assert config["name"] == "tiny" and config["trainer"]["epochs"] == 2 and config["model"]["pretrained"] is False
    rows = read_metrics(run.metrics)
    sent = history(records)
    assert {step: json.loads(v) for step, v in sent["f1/val"].items()} == {r["epoch"]: pytest.approx(r["val_f1"])
                                                                           for r in rows}
    assert set(sent["loss/train"]) == {1, 2}
    files = {f.path for r in records if r.WhichOneof("record_type") == "files" for f in r.files.files}
    assert {"report.png", "val_predictions.csv"} <= files
    assert (offline / "files" / "report.png").resolve().read_bytes() == run.report.read_bytes()
    assert (offline / "files" / "val_predictions.csv").resolve().read_text() == run.val_predictions.read_text()


def test_online_without_a_login_is_one_line_before_anything_is_written(demo_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc, no settings
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    overrides = tiny_overrides(demo_data, tmp_path / "saved", **{"logging.wandb": "{project: p, mode: online}"})
    fails_in_one_line(train.main, ["--config", str(ROOT / "configs/demo.yaml"), *overrides], capsys,
                      "logging.wandb", "wandb login", "mode=offline")
    assert not (tmp_path / "saved").exists()
