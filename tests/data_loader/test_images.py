"""Every image mode Pillow opens becomes correct 8-bit RGB, upright; the integrity check refuses what
cannot be decoded and nothing that can; limits are one line."""
import io

import numpy as np
import pytest
from PIL import Image

from data_loader import images
from data_loader.cache import decode_fixed
from data_loader.images import check_image, load_image
from utils.errors import DataError

GRAY = 100  # the 8-bit gray level every sample below stands for


def sample(mode):
    """(image, file format) of a 24x16 image of gray level GRAY in `mode`'s own scale."""
    size = (24, 16)
    if mode == "I;16":
        return Image.fromarray(np.full(size[::-1], GRAY * 257, dtype=np.uint16)), "PNG"
    if mode == "I":
        return Image.fromarray(np.full(size[::-1], GRAY * 257, dtype=np.int32)), "TIFF"
    if mode == "F":
        return Image.fromarray(np.full(size[::-1], GRAY / 255, dtype=np.float32), mode="F"), "TIFF"
    if mode == "CMYK":
        return Image.new("RGB", size, (GRAY,) * 3).convert("CMYK"), "JPEG"
    base = Image.new("RGB", size, (GRAY,) * 3)
    fmt = "PNG"
    return (base.convert(mode) if mode != "P" else base.quantize(colors=4)), fmt


@pytest.mark.parametrize("mode", ["RGB", "L", "LA", "RGBA", "P", "I;16", "I", "F", "CMYK"])
def test_every_mode_decodes_to_its_gray_level(tmp_path, mode):
    image, fmt = sample(mode)
    path = tmp_path / f"img.{fmt.lower()}"
    image.save(path, format=fmt)
    check_image(path)
    array = load_image(path)
    assert array.dtype == np.uint8 and array.shape == (16, 24, 3)
    assert abs(float(array.mean()) - GRAY) <= 3, (mode, array.mean())


def oriented_jpeg(path, orientation):
    """A 40x20 photo: left half black, right half white, with an EXIF orientation tag."""
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, 20:] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, format="JPEG", exif=exif, quality=95)
    return path


@pytest.mark.parametrize("draft", [None, (8, 16)])
def test_exif_orientation_is_applied_everywhere(tmp_path, draft):
    path = oriented_jpeg(tmp_path / "phone.jpg", 6)  # displayed turned 90 degrees clockwise
    upright = load_image(path, draft)
    assert upright.shape[:2] == ((40, 20) if draft is None else upright.shape[:2])
    assert upright.shape[0] > upright.shape[1]  # portrait once upright
    top, bottom = upright[: upright.shape[0] // 4].mean(), upright[-upright.shape[0] // 4:].mean()
    assert top < 60 and bottom > 190  # the black half is on top after a clockwise turn
    cached = decode_fixed(str(path), (40, 20))  # the image cache decodes through the same function
    assert cached.shape == (40, 20, 3) and cached[:10].mean() < 60


def jpeg_bytes():
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def test_bytes_after_the_end_marker_are_accepted(tmp_path):
    path = tmp_path / "motion.jpg"
    path.write_bytes(jpeg_bytes() + b"\x00MP4 appended by a phone" * 400)
    check_image(path)
    assert load_image(path).shape == (48, 64, 3)


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_files_are_refused(tmp_path, cut):
    data = jpeg_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(DataError, match="cut.jpg: (truncated or damaged JPEG|not a readable image)"):
        check_image(path)


@pytest.mark.parametrize("limit", ["ours", "pillow"])
def test_huge_images_are_one_line(tmp_path, monkeypatch, limit):
    path = tmp_path / "huge.png"
    Image.new("L", (200, 200)).save(path)
    if limit == "ours":
        monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    else:
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    for call in (check_image, load_image):
        with pytest.raises(DataError) as err:
            call(path)
        assert "huge.png" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 30])
def test_non_images_are_refused(tmp_path, content):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(DataError, match="bad.png"):
        check_image(path)
