"""`data_loader.crop`: the centred window before the resize, applied identically in training, validation,
prediction and the ONNX export's preprocessing."""
import numpy as np
import pytest
from PIL import Image

from data_loader.crop import CenterCrop, build_crop, centered
from helpers import ROOT, tiny_overrides
from utils.config import load_config
from utils.errors import ConfigError

CROP = {"augment.center_crop": "[0.625, 0.6667]"}


def coordinate_photo(path, width=384, height=512):
    """A PNG whose red channel is x // 2 and green channel y // 2: a crop's pixels say where they came from."""
    ys, xs = np.mgrid[0:height, 0:width]
    image = np.stack([xs // 2, ys // 2, np.zeros_like(xs)], axis=2).astype(np.uint8)
    Image.fromarray(image).save(path)
    return path


def test_the_window_is_centred_and_its_share_of_the_photo():
    assert centered(image_w=384, image_h=512, share=(0.625, 0.6667)) == (64, 96, 320, 416)  # 256 x 320
    assert centered(image_w=384, image_h=512, share=(1.0, 1.0)) == (0, 0, 384, 512)
    x0, y0, x1, y1 = centered(image_w=97, image_h=61, share=(0.5, 0.3))
    assert (x1 - x0, y1 - y0) == (29, 30) and x0 == (97 - 29) // 2 and y0 == (61 - 30) // 2


def test_a_photo_is_cut_to_its_window_before_the_resize(tmp_path):
    photo = str(coordinate_photo(tmp_path / "p.png"))
    crop = CenterCrop(share=(0.625, 0.6667), out_hw=(320, 256), draft=False)
    cut = crop(photo)
    assert cut.shape == (320, 256, 3)
    assert cut[0, 0, 0] == 64 // 2 and cut[0, 0, 1] == 96 // 2  # the window's corner, not the photo's
    assert cut[-1, -1, 0] == 319 // 2 and cut[-1, -1, 1] == 415 // 2
    small = CenterCrop(share=(0.625, 0.6667), out_hw=(128, 96), draft=True)
    assert small.draft_size() == (144, 205) and small(photo).shape == (128, 96, 3)
    assert small.fingerprint() != crop.fingerprint() and small.label_leak_warning() is None


def test_the_config_takes_shares_and_one_crop_only(tmp_path):
    config = load_config(ROOT / "configs/demo.yaml", [f"{k}={v}" for k, v in CROP.items()])
    assert config.augment.center_crop == (0.625, 0.6667)
    assert isinstance(build_crop(config.augment, [], draft=True), CenterCrop)
    assert build_crop(load_config(ROOT / "configs/demo.yaml", ["augment.center_crop=null"]).augment, [],
                      draft=True) is None
    with pytest.raises(ConfigError, match=r"augment.center_crop: .*shares of the photo in \(0, 1\], got \[0.0, 0.5\]"):
        load_config(ROOT / "configs/demo.yaml", ["augment.center_crop=[0, 0.5]"])
    with pytest.raises(ConfigError, match="center_crop and face_crop both cut the photo"):
        load_config(ROOT / "configs/demo.yaml", ["augment.center_crop=[0.6, 0.6]", "augment.face_crop.margin=0.2"])


@pytest.mark.parametrize("cache", ["memory", "none"])
def test_a_validation_photo_is_the_same_tensor_in_training_prediction_and_the_onnx_preprocessing(
        demo_data, tmp_path, cache):
    """The Trainer's val loader (from the cache, which holds the crop), the predictor's pipeline (from the
    file, TTA flips that tensor) and the export's numpy preprocessing give one tensor per photo."""
    import torch

    from data_loader.pipeline import build_image_pipeline
    from predict.export import preprocessing
    from predict.onnx_model import Preprocess
    from trainer.build import build_parts

    config = load_config(ROOT / "configs/demo.yaml",
                         tiny_overrides(demo_data, tmp_path, **CROP, **{"data.cache": cache}))
    val = build_parts(config).val_loader.dataset
    assert isinstance(val.crop, CenterCrop) and (val.cache is not None) == (cache == "memory")
    if val.cache is not None:
        assert val.cache.shape[1:3] == tuple(config.augment.image_size)  # the cache holds the crop only
    predicted = build_image_pipeline(config, [config.data.train_dir]).eval_dataset(val.paths[:3], seed=config.seed)
    onnx_side = Preprocess(preprocessing(config), None)
    whole = build_image_pipeline(load_config(ROOT / "configs/demo.yaml", tiny_overrides(
        demo_data, tmp_path, **{"augment.center_crop": "null"})), []).eval_dataset(val.paths[:1])
    for k in range(3):
        assert torch.equal(val[k][0], predicted[k][0])
        np.testing.assert_allclose(onnx_side(val.paths[k], k), predicted[k][0].numpy(), atol=1e-6)
    assert not torch.allclose(whole[0][0], predicted[0][0])  # the crop changes what the network sees
