import io

import numpy as np
import pytest
from PIL import Image

from style_core.images import ImageError, load_image, resize_long_side, save_image

from .hostile import _png_header_only


def _save(img: Image.Image, tmp_path, name: str, **kw) -> str:
    path = tmp_path / name
    img.save(path, **kw)
    return str(path)


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), "red")
    img.paste((0, 0, 255), (0, 0, 10, 20))  # blue on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW when displayed
    path = _save(img, tmp_path, "rot.jpg", exif=exif)
    out = load_image(path)
    assert out.size == (20, 40)
    top = np.asarray(out)[2, 10]
    assert top[2] > 200 and top[0] < 80  # the blue band is now on top


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "CMYK", "I;16", "P", "1", "F", "I"])
def test_every_mode_becomes_rgb(tmp_path, mode):
    base = Image.new("RGB", (16, 16), (200, 100, 50))
    img = (
        base.convert(mode)
        if mode not in ("I;16", "F", "I")
        else Image.new(mode, (16, 16), 30000 if mode != "F" else 0.5)
    )
    out = load_image(img)
    assert out.mode == "RGB" and out.size == (16, 16)


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    arr = np.full((16, 16), 32768, dtype=np.uint16)
    path = _save(Image.fromarray(arr), tmp_path, "deep.png")
    out = np.asarray(load_image(path))
    assert 120 <= out[0, 0, 0] <= 135


def test_alpha_goes_over_white(tmp_path):
    img = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    assert np.asarray(load_image(img))[0, 0].tolist() == [255, 255, 255]
    pal = Image.new("P", (10, 10), 0)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.info["transparency"] = 0
    path = _save(pal, tmp_path, "pal.png", transparency=0)
    assert np.asarray(load_image(path))[0, 0].tolist() == [255, 255, 255]


def test_arrays_and_bytes(tmp_path):
    assert load_image(np.zeros((20, 30, 3), np.uint8)).size == (30, 20)
    assert load_image(np.ones((20, 30), np.float32)).getpixel((0, 0)) == (255, 255, 255)
    buf = io.BytesIO()
    Image.new("RGB", (12, 12)).save(buf, "PNG")
    assert load_image(buf.getvalue()).size == (12, 12)
    with pytest.raises(ImageError, match="HxW"):
        load_image(np.zeros((2, 3, 4, 5)))


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(60000, 60000))
    with pytest.raises(ImageError, match="too large|megapixels"):
        load_image(path)


def test_bad_files_get_plain_messages(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(empty)
    html = tmp_path / "page.jpg"
    html.write_text("<html>not a picture</html>")
    with pytest.raises(ImageError, match="not a picture format"):
        load_image(html)
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="damaged|truncated"):
        load_image(truncated)
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="at least"):
        load_image(Image.new("RGB", (1, 3000)))
    with pytest.raises(ImageError, match="MB"):
        load_image(html, max_bytes=5)


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (10, 10), c) for c in ("red", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    out = load_image(buf.getvalue())
    assert out.getpixel((5, 5))[0] > 200


def test_resize_and_save(tmp_path):
    img = Image.new("RGB", (400, 200))
    assert resize_long_side(img, 100).size == (100, 50)
    assert load_image(save_image(img, tmp_path / "a.png")).size == (400, 200)
    assert load_image(save_image(img, tmp_path / "sub" / "b.jpg")).size == (400, 200)
    with pytest.raises(ImageError, match="png"):
        save_image(img, tmp_path / "c.bmp")
