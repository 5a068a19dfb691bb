"""What a run shows in TensorBoard besides scalars: labelled samples, the HParams entry."""
import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata

from helpers import ROOT
from trainer import visual_log
from trainer.visual_log import key_hparams, log_augmented_samples
from utils.config import load_config
from utils.labels import class_names
from utils.logger import RunLogger

pytestmark = pytest.mark.figures  # these tests are about the pictures: drawn for real


class LabelledImages(torch.utils.data.Dataset):
    def __init__(self, labels):
        self.labels = labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return torch.full((3, 8, 6), 0.1 * i), self.labels[i], i


def test_augmented_samples_are_titled_with_their_training_labels(tmp_path, monkeypatch):
    seen = {}
    real = visual_log.image_grid_figure

    def spy(images, titles, **kwargs):
        seen["titles"], seen["n"] = list(titles), len(images)
        return real(images, titles, **kwargs)

    monkeypatch.setattr(visual_log, "image_grid_figure", spy)
    logger = RunLogger(tmp_path)
    names = class_names([30, 58])
    log_augmented_samples(logger, LabelledImages([4, 17, 0]), [0.5] * 3, [0.2] * 3, names=names)
    logger.close()
    assert seen == {"titles": ["wear F 30-57", "not F >=58", "wear M <30"], "n": 3}
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert events.Tags()["images"] == ["train/augmented_samples"]


def test_hparams_hold_the_core_keys_and_every_overridden_key_with_resolved_values():
    overrides = ["optimizer.lr=0.003", "augment.image_size=[32,24]", "loss.name=focal", "data.val_ratio=0.3"]
    config = load_config(ROOT / "configs/demo.yaml", overrides)
    hparams = key_hparams(config, overrides)
    assert hparams["optimizer.lr"] == 0.003 and hparams["augment.image_size"] == "32x24"
    assert hparams["loss.name"] == "focal" and hparams["data.val_ratio"] == 0.3
    assert hparams["model.backbone"] == config.model.backbone and "data.dataset" not in hparams
    assert all(isinstance(v, (int, float, str, bool)) for v in hparams.values())


def test_hparams_session_without_an_experiment_summary(tmp_path):
    """TensorBoard keeps the first experiment summary it meets and hides keys other runs logged: none is
    written, the session sits in the run's `hparams/` sub-run with only the monitored score as metric."""
    for name, extra in (("a", {"optimizer.lr": 0.1}), ("b", {"loss.name": "focal"})):
        logger = RunLogger(tmp_path / name)
        logger.log_hparams({"model.backbone": "resnet18", **extra}, {"val_f1": 0.5})
        logger.close()
        assert metadata.EXPERIMENT_TAG not in hparams_tags(tmp_path / name)
        assert metadata.EXPERIMENT_TAG not in hparams_tags(tmp_path / name / "hparams")
        session = EventAccumulator(str(tmp_path / name / "hparams"))
        session.Reload()
        start = metadata.parse_session_start_info_plugin_data(
            session.PluginTagToContent("hparams")[metadata.SESSION_START_INFO_TAG])
        assert set(start.hparams) == {"model.backbone", *extra}
        assert session.Tags()["scalars"] == ["hparams/val_f1"]
        assert np.isclose(session.Scalars("hparams/val_f1")[0].value, 0.5)


def hparams_tags(run_dir):
    events = EventAccumulator(str(run_dir))
    events.Reload()
    try:
        return set(events.PluginTagToContent("hparams"))
    except KeyError:  # no hparams summary in this run
        return set()
