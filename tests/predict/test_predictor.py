import numpy as np
import pandas as pd
import pytest
import torch

import inference
import train
from helpers import ROOT, fails_in_one_line, small_eval, tiny_overrides
from predict.predictor import predict_probs, soft_vote
from utils.errors import UserError


@pytest.fixture(scope="module")
def two_runs(demo_data, tmp_path_factory):
    """Two tiny trained runs with different seeds."""
    save = tmp_path_factory.mktemp("saved")
    runs = []
    for seed in (1, 2):
        out = train.main(["--config", str(ROOT / "configs" / "demo.yaml"),
                          *tiny_overrides(demo_data, save, seed=seed, name=f"run{seed}")])
        runs.append(out["run_dir"])
    return runs


def read_sub(path):
    return pd.read_csv(path, dtype={"ImageID": str})


def test_submission_keeps_info_csv_order(demo_data, two_runs, tmp_path):
    out = tmp_path / "sub.csv"
    inference.main(["--ckpt", two_runs[0], "--data", str(demo_data / "eval"), "--out", str(out)])
    sub, info = read_sub(out), pd.read_csv(demo_data / "eval" / "info.csv", dtype=str)
    assert list(sub.columns) == ["ImageID", "ans"]
    assert sub["ImageID"].tolist() == info["ImageID"].tolist()
    assert sub["ans"].between(0, 17).all()


def test_default_output_goes_to_run_dir(two_runs):
    path = inference.main(["--ckpt", two_runs[0]])
    assert str(path).startswith(two_runs[0]) and path.name == "submission.csv" and path.is_file()


def test_ensemble_is_mean_of_softmax(demo_data, two_runs):
    from helpers import predict_with

    where = {"eval_dir": demo_data / "eval", "device": torch.device("cpu")}
    _, probs = predict_with(two_runs, **where)
    single = [predict_with([r], **where)[1] for r in two_runs]
    np.testing.assert_allclose(probs, (single[0] + single[1]) / 2, rtol=1e-5, atol=1e-6)
    assert not np.allclose(single[0], single[1])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_soft_vote_weights():
    a, b = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    np.testing.assert_allclose(soft_vote([a, b]), [[0.5, 0.5]])
    np.testing.assert_allclose(soft_vote([a, b], [3, 1]), [[0.75, 0.25]])
    with pytest.raises(UserError):
        soft_vote([a, b], [1])


def test_tta_averages_with_flip():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 5, 18))
    images = torch.randn(6, 3, 4, 5)
    dataset = [(img, -1, i) for i, img in enumerate(images)]
    loader = torch.utils.data.DataLoader(dataset, batch_size=4)
    plain = predict_probs(model, loader, device=torch.device("cpu"))
    tta = predict_probs(model, loader, device=torch.device("cpu"), tta=True)
    flipped = model(images.flip(-1)).softmax(1).detach().numpy()
    np.testing.assert_allclose(tta, (plain + flipped) / 2, rtol=1e-5, atol=1e-6)


def test_missing_eval_image_is_error_naming_it(demo_data, two_runs, tmp_path, capsys):
    import shutil

    eval_dir = tmp_path / "eval"
    shutil.copytree(demo_data / "eval", eval_dir)
    victim = pd.read_csv(eval_dir / "info.csv")["ImageID"].iloc[3]
    (eval_dir / "images" / victim).unlink()
    argv = ["--ckpt", two_runs[0], "--data", str(eval_dir), "--out", str(tmp_path / "s.csv")]
    fails_in_one_line(inference.main, argv, capsys, victim)
    assert not (tmp_path / "s.csv").exists()


def test_bad_checkpoints_are_clear_errors(tmp_path, capsys):
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint at all")
    for path in (tmp_path / "missing.pth", corrupt):
        fails_in_one_line(inference.main, ["--ckpt", str(path)], capsys, str(path))


def test_a_checkpoint_rebuilds_without_the_pretrained_file_it_was_trained_from(demo_data, tmp_path):
    """The training machine's `model.pretrained_path` is usually absent where the checkpoint predicts: the
    network is rebuilt without it, and the checkpoint's own weights are loaded."""
    from helpers import untrained_checkpoint
    from predict.predictor import model_from_checkpoint
    from trainer.checkpoint import load_checkpoint

    ckpt = untrained_checkpoint(demo_data, tmp_path / "run" / "best.pth", seed=4)
    state = load_checkpoint(ckpt)
    state["config"]["model"].update(pretrained=True, pretrained_path=str(tmp_path / "elsewhere.pth"))
    model, config = model_from_checkpoint(state, str(ckpt))
    assert config.model.pretrained is True and config.model.pretrained_path == tmp_path / "elsewhere.pth"
    loaded = model.state_dict()
    assert loaded.keys() == state["model"].keys()
    assert all(torch.equal(loaded[name], tensor) for name, tensor in state["model"].items())


def test_a_checkpoint_that_cannot_predict_says_why_in_one_line(demo_data, tmp_path):
    from helpers import untrained_checkpoint
    from predict.predictor import model_from_checkpoint
    from trainer.checkpoint import load_checkpoint
    from utils.errors import ConfigError

    ckpt = untrained_checkpoint(demo_data, tmp_path / "run" / "best.pth")
    source = str(ckpt)

    def refusal(state: dict, error=UserError) -> str:
        with pytest.raises(error) as caught:
            model_from_checkpoint(state, source)
        return str(caught.value)

    state = load_checkpoint(ckpt)
    name = next(n for n, t in state["model"].items() if t.is_floating_point() and n.endswith("weight"))
    state["model"][name] = state["model"][name].clone().fill_(float("nan"))
    assert refusal(state) == f"{source}: non-finite weights (NaN/Inf) in {name}; this checkpoint cannot predict"

    state = load_checkpoint(ckpt)
    head = [n for n in state["model"] if n.endswith("weight")][-1]
    rows, cols = state["model"][head].shape
    state["model"][head] = torch.zeros(rows, cols + 1)
    assert refusal(state) == (
        f"{source}: weights do not fit mobilenetv3_small_050/{state['config']['model']['head']} (size mismatch "
        f"for {head}: copying a param with shape torch.Size([{rows}, {cols + 1}]) from checkpoint, the shape in "
        f"current model is torch.Size([{rows}, {cols}]).)")

    state = load_checkpoint(ckpt)
    state["config"]["model"]["colour"] = "red"
    assert refusal(state, ConfigError).startswith(f"{source}: model.colour: unknown key")


def test_the_eval_directory_is_the_given_one_or_the_first_checkpoints(demo_data, tmp_path):
    from pathlib import Path

    from helpers import predict_with, untrained_checkpoint
    from predict.predictor import resolve_models

    trained_on = untrained_checkpoint(demo_data, tmp_path / "run" / "best.pth")
    without = untrained_checkpoint(demo_data, tmp_path / "bare" / "best.pth", **{"data.eval_dir": "null"})
    assert resolve_models([tmp_path / "run", without]).eval_dir() == demo_data / "eval"  # a run means its best.pth
    assert resolve_models([trained_on]).eval_dir(tmp_path / "other") == tmp_path / "other"
    assert isinstance(resolve_models([trained_on]).eval_dir(str(tmp_path)), Path)
    assert resolve_models([without]).eval_dir(tmp_path) == tmp_path
    for find in (lambda ckpts: resolve_models(ckpts).eval_dir(), lambda ckpts: predict_with(ckpts)):
        for ckpts in ([without], [without, trained_on]):
            with pytest.raises(UserError) as caught:
                find(ckpts)
            assert str(caught.value) == "no eval directory: pass --data or set data.eval_dir"


def test_weights_must_be_one_per_array_non_negative_with_a_positive_sum():
    a, b = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    np.testing.assert_allclose(soft_vote([a, b], [1, 0]), [[1.0, 0.0]])  # a zero weight leaves one out
    np.testing.assert_allclose(soft_vote([a, b], [0.5, 0.25]), [[2 / 3, 1 / 3]])
    for weights in ([1], [2, -1], [float("nan"), 1], [float("inf"), 1], [0, 0]):
        with pytest.raises(UserError) as caught:
            soft_vote([a, b], weights)
        shown = [float(w) for w in weights]
        assert str(caught.value) == f"need 2 non-negative weights with a positive sum, got {shown}"


def test_an_ensemble_weighs_its_entries_and_shares_an_entrys_weight_among_its_folds(demo_data, tmp_path):
    """Without --weights every checkpoint counts once (a folds directory counts once per fold); with them, each
    --ckpt gets its weight, a folds directory's shared evenly by its folds. One fast test of the glue the slow
    end-to-end runs also cover."""
    from helpers import predict_with, untrained_checkpoint

    a = untrained_checkpoint(demo_data, tmp_path / "a" / "best.pth", seed=0)
    kfold = tmp_path / "kfold"
    for k in range(2):
        untrained_checkpoint(demo_data, kfold / "folds" / f"fold_{k}" / "best.pth", seed=k + 1)
    (kfold / "config.yaml").write_text("data:\n  n_folds: 2\n")
    eval_dir = small_eval(demo_data, tmp_path, 8)
    where = {"device": torch.device("cpu"), "eval_dir": eval_dir, "num_workers": 0}
    table, pa = predict_with([a], **where)
    f0, f1 = (predict_with([kfold / "folds" / f"fold_{k}"], **where)[1] for k in range(2))
    assert not np.allclose(pa, f0) and not np.allclose(f0, f1)
    info = pd.read_csv(eval_dir / "info.csv", dtype=str)
    assert table["ImageID"].tolist() == info["ImageID"].tolist() and pa.shape == (8, 18)
    close = dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(predict_with([kfold], **where)[1], (f0 + f1) / 2, **close)
    np.testing.assert_allclose(predict_with([a, kfold], **where)[1], (pa + f0 + f1) / 3, **close)
    np.testing.assert_allclose(predict_with([a, kfold], weights=[1, 1], **where)[1], (pa + (f0 + f1) / 2) / 2,
                               **close)
    np.testing.assert_allclose(predict_with([a, kfold], weights=[3, 2], **where)[1], (3 * pa + f0 + f1) / 5,
                               **close)
    flipped = predict_with([a], tta=True, **where)[1]
    assert not np.allclose(flipped, pa)
    with pytest.raises(UserError) as caught:
        predict_with([a, kfold], weights=[1], **where)
    assert str(caught.value) == "--weights: 1 weight(s) for 2 --ckpt"


def test_predicting_paths_cuts_faces_found_under_the_given_folders_once_per_crop(demo_data, tmp_path, caplog):
    """`predict_paths` feeds its config's evaluation pipeline (faces from the boxes under `photo_dirs`, no TTA
    unless asked, the checkpoint's AMP setting), fills the caller's crop memo and logs each crop's summary once."""
    import logging

    from data_loader.loaders import build_loader
    from data_loader.pipeline import build_image_pipeline
    from helpers import untrained_checkpoint
    from predict.predictor import model_from_checkpoint, predict_paths
    from trainer.checkpoint import load_checkpoint

    eval_dir = small_eval(demo_data, tmp_path, 6)
    ckpt = untrained_checkpoint(demo_data, tmp_path / "run" / "best.pth",
                                **{"augment.face_crop.margin": 0.2, "trainer.amp": "bf16"})
    model, config = model_from_checkpoint(load_checkpoint(ckpt), str(ckpt))
    paths = sorted(str(p) for p in (eval_dir / "images").iterdir())
    reference = build_image_pipeline(config, [eval_dir]).eval_dataset(paths, seed=config.seed)
    expected = predict_probs(model, build_loader(reference, batch_size=4, train=False, seed=0, num_workers=0),
                             device=torch.device("cpu"))
    crops, logged = {}, set()
    where = {"source": "ckpt", "device": torch.device("cpu"), "num_workers": 0, "crops": crops, "logged": logged}
    with caplog.at_level(logging.INFO, logger="predict.predictor"):
        probs = predict_paths(model, config, paths, [eval_dir], **where)
        again = predict_paths(model, config, paths, [eval_dir], **where)
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(again, expected, rtol=1e-5, atol=1e-6)
    (crop,) = crops.values()
    assert crop is not None and logged == {id(crop)}
    assert [m for m in caplog.messages if m.startswith("face crop:")] == [crop.summary()]
    assert caplog.messages.count("predicting 6 images with ckpt") == 2
    blind = predict_paths(model, config, paths, [None], source="ckpt", device=torch.device("cpu"), num_workers=0)
    assert not np.allclose(blind, expected)  # without the folder's boxes every photo is cut to the centred window
    # the checkpoint's AMP setting reaches the prediction (on a CPU it predicts in fp32, with a warning each time)
    assert caplog.messages.count("trainer.amp=bf16: predicting in fp32 on the CPU (CPU autocast is for training "
                                 "only)") == 3


def test_an_ensemble_reads_the_eval_table_and_finds_the_faces_once_for_all_its_checkpoints(demo_data, tmp_path,
                                                                                          caplog):
    import logging

    from helpers import predict_with, untrained_checkpoint

    eval_dir = small_eval(demo_data, tmp_path, 5)
    crop = {"augment.face_crop.margin": 0.2}
    ckpts = [untrained_checkpoint(demo_data, tmp_path / name / "best.pth", seed=k, **crop)
             for k, name in enumerate(("a", "b"))]
    with caplog.at_level(logging.INFO, logger="predict.predictor"):
        table, probs, sizes = predict_with(ckpts, groups=True, eval_dir=eval_dir, num_workers=0)
    assert len(table) == 5 and sizes == [1, 1] and [p.shape for p in probs] == [(5, 18), (5, 18)]
    assert sum(m.startswith("face crop:") for m in caplog.messages) == 1
    predicting = [m for m in caplog.messages if m.startswith("predicting")]
    assert predicting == [f"predicting 5 images with {c}" for c in ckpts]


def test_an_entry_predicts_with_the_weights_asked_for_and_a_bad_one_is_named(demo_data, tmp_path):
    from helpers import predict_with, untrained_checkpoint
    from trainer.checkpoint import load_checkpoint, save_checkpoint

    run = tmp_path / "run"
    best = untrained_checkpoint(demo_data, run / "best.pth", seed=0)
    swa = untrained_checkpoint(demo_data, run / "swa.pth", seed=1)
    where = {"device": torch.device("cpu"), "eval_dir": small_eval(demo_data, tmp_path, 4), "num_workers": 0}
    by_name = {which: predict_with([run], groups=True, which=which, **where)[1][0] for which in ("best", "swa")}
    np.testing.assert_allclose(by_name["swa"], predict_with([swa], groups=True, **where)[1][0], rtol=1e-6)
    np.testing.assert_allclose(by_name["best"], predict_with([best], groups=True, **where)[1][0], rtol=1e-6)
    assert not np.allclose(by_name["swa"], by_name["best"])
    state = load_checkpoint(best)
    state["model"] = {k: v.clone().fill_(float("nan")) if v.is_floating_point() else v
                      for k, v in state["model"].items()}
    bad = tmp_path / "bad" / "best.pth"
    bad.parent.mkdir()
    save_checkpoint(state, bad)
    with pytest.raises(UserError, match=rf"^{bad}: non-finite weights \(NaN/Inf\) in "):
        predict_with([bad.parent], groups=True, **where)


def test_inference_loads_each_checkpoint_once_and_names_a_stray_fold_once(demo_data, tmp_path, caplog, monkeypatch):
    """Two K-fold runs with --group-people: every fold file is read from disk exactly once (the first one
    serves the eval directory, the prediction and the grouping's validation), one warning per stray fold."""
    import logging
    import shutil
    from collections import Counter

    from helpers import untrained_checkpoint
    from trainer import checkpoint

    runs = [tmp_path / name for name in ("k1", "k2")]
    for r, run in enumerate(runs):
        for k in range(2):
            untrained_checkpoint(demo_data, run / "folds" / f"fold_{k}" / "best.pth", seed=2 * r + k)
        (run / "config.yaml").write_text("data:\n  n_folds: 2\n")
    shutil.copytree(runs[0] / "folds" / "fold_1", runs[0] / "folds" / "fold_1_copy")
    loads, real_load = Counter(), checkpoint.torch.load
    monkeypatch.setattr(checkpoint.torch, "load", lambda path, **kw: loads.update([str(path)]) or real_load(path, **kw))
    eval_dir = small_eval(demo_data, tmp_path, 6)
    with caplog.at_level(logging.WARNING):
        out = inference.main(["--ckpt", str(runs[0]), "--ckpt", str(runs[1]), "--data", str(eval_dir),
                              "--group-people", "--out", str(tmp_path / "sub.csv")])
    files = [str(run / "folds" / f"fold_{k}" / "best.pth") for run in runs for k in range(2)]
    assert dict(loads) == {f: 1 for f in files}
    assert sum("fold_1_copy left out" in m for m in caplog.messages) == 1
    assert len(pd.read_csv(out)) == 6
