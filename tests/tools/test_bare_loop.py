"""tools.bare_loop: the hand-written reference loop that the framework's time to a score is measured against."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from tools import bare_loop


def test_a_photo_is_resized_whole_not_cut(tmp_path):
    photo = np.zeros((512, 384, 3), dtype=np.uint8)
    photo[:64] = 255  # the top eighth white: a centre crop would lose it
    Image.fromarray(photo).save(tmp_path / "p.png")
    (decoded,) = bare_loop.decode_all([str(tmp_path / "p.png")], (64, 48))
    assert decoded.shape == (3, 64, 48) and decoded.dtype == torch.uint8
    assert decoded[:, :7].float().mean() > 250 and decoded[:, 9:].float().mean() < 5


def test_the_loop_learns_the_labels_of_its_own_photos():
    """Labels follow their photos through the shuffle: a class drawn as a bright quadrant is learned."""
    torch.manual_seed(0)
    labels = torch.arange(64) % 4
    images = torch.zeros(64, 3, 8, 8, dtype=torch.uint8)
    for i, label in enumerate(labels.tolist()):
        row, col = divmod(label, 2)
        images[i, :, row * 4:row * 4 + 4, col * 4:col * 4 + 4] = 255
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 4))
    bare_loop.train(model, images, labels, epochs=30, batch_size=16, lr=0.05)
    # the flip swaps left and right quadrants, so a learned class is left/right-blind: rows are what must hold
    assert (bare_loop.predict(model, images) // 2 == labels // 2).float().mean() == 1.0


@pytest.mark.usefixtures("demo_data")
def test_it_writes_a_submission_of_every_eval_photo_in_order_and_its_timing(demo_data, tmp_path):
    out = tmp_path / "bare"
    timing = bare_loop.main(["--train-dir", str(demo_data / "train"), "--eval-dir", str(demo_data / "eval"),
                             "--out", str(out), "--epochs", "1", "--image-size", "32", "24"])
    info = pd.read_csv(demo_data / "eval" / "info.csv", dtype=str)
    sub = pd.read_csv(out / "submission.csv", dtype={"ImageID": str})
    assert sub["ImageID"].tolist() == info["ImageID"].tolist() and sub["ans"].between(0, 17).all()
    assert json.loads((out / "timing.json").read_text()) == pytest.approx(timing)
    assert timing["train_images"] == 210 and timing["total_s"] >= timing["train_s"] > 0
