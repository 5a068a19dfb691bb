import numpy as np
import pandas as pd
import pytest
import torch

import inference
import train
from helpers import ROOT, fails_in_one_line, tiny_overrides
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
    from predict import predictor

    where = {"eval_dir": demo_data / "eval", "device": torch.device("cpu")}
    _, probs = predictor.ensemble_predict(two_runs, **where)
    single = [predictor.ensemble_predict([r], **where)[1] for r in two_runs]
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
