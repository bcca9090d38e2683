"""Image I/O: every picture a user can throw at us becomes a plain RGB PIL image, or a clear ImageError.

Kept free of torch models and of gradio so the app, the CLI and the tests share one set of rules.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ImageSource = str | os.PathLike | Image.Image | np.ndarray | bytes

#: Refuse pictures above this many pixels before decoding them (a 60000x60000 PNG header is a bomb).
DEFAULT_MAX_PIXELS = 50_000_000
#: Refuse files above this many bytes before reading them.
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


class ImageError(ValueError):
    """A picture we cannot use; the message is written for the person who supplied it."""


def _describe(source: ImageSource) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"'{Path(source).name}'"
    return "the picture"


def _open(source: ImageSource, max_bytes: int) -> Image.Image:
    """Open lazily (header only) so that the size check runs before any pixel is decoded."""
    what = _describe(source)
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, bytes):
        data: io.BytesIO | str | os.PathLike = io.BytesIO(source)
        size = len(source)
    else:
        path = Path(source)
        if not path.exists():
            raise ImageError(f"{what} does not exist.")
        if not path.is_file():
            raise ImageError(f"{what} is not a file.")
        size = path.stat().st_size
        data = path
    if size == 0:
        raise ImageError(f"{what} is empty (0 bytes).")
    if size > max_bytes:
        raise ImageError(f"{what} is {size / 2**20:.0f} MB; the limit is {max_bytes / 2**20:.0f} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(data)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{what} claims to be far too large to decode safely.") from None
    except UnidentifiedImageError:
        raise ImageError(f"{what} is not a picture format we can read (try PNG, JPEG or WebP).") from None
    except OSError as exc:
        raise ImageError(f"{what} could not be read: {exc}.") from None


def _from_array(array: np.ndarray) -> Image.Image:
    """Accept HxW, HxWx1/3/4 arrays, uint8 or float in [0, 1]."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageError(f"An image array must be HxW or HxWx3/4, not {a.shape}.")
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating):
            if not np.isfinite(a).all():
                raise ImageError("The image array holds NaN or infinite values.")
            scale = 255.0 if a.max(initial=0.0) <= 1.0 else 1.0
            a = np.clip(a * scale, 0, 255).astype(np.uint8)
        else:
            a = np.clip(a, 0, 255).astype(np.uint8)
    return Image.fromarray(a)


def _to_rgb(img: Image.Image) -> Image.Image:
    """Every mode to RGB; transparency is composited over white, 16-bit is scaled down, not clipped."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or a.max(initial=0) > 255 else 255.0
        img = Image.fromarray(np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        a = np.asarray(img, dtype=np.float64)
        hi = 1.0 if a.max(initial=0) <= 1.0 else 255.0
        img = Image.fromarray(np.clip(a / hi * 255.0, 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("LA", "La", "RGBa", "PA"):
        img = img.convert("RGBA")
    if img.mode == "L" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode == "RGB" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        return background
    return img.convert("RGB")


def load_image(
    source: ImageSource,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    min_side: int = 8,
) -> Image.Image:
    """Load any supported picture as an upright RGB image, or raise ImageError in plain words."""
    what = _describe(source)
    img = _open(source, max_bytes)
    width, height = img.size
    if width * height > max_pixels:
        raise ImageError(f"{what} is {width}x{height} pixels; the limit is {max_pixels / 1e6:.0f} megapixels.")
    try:
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)  # animated GIF / WebP / APNG: the first frame
        img.load()
        img = ImageOps.exif_transpose(img) or img
        rgb = _to_rgb(img)
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{what} is damaged or truncated and could not be decoded ({exc}).") from None
    if min(rgb.size) < min_side:
        raise ImageError(f"{what} is {rgb.width}x{rgb.height} pixels; each side must be at least {min_side}.")
    return rgb


def resize_long_side(img: Image.Image, long_side: int) -> Image.Image:
    """Scale so that the longer side is `long_side` px, keeping the aspect ratio (at least 1 px a side)."""
    width, height = img.size
    scale = long_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size == img.size:
        return img
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def save_image(img: Image.Image, path: str | os.PathLike, quality: int = 95) -> Path:
    """Save as PNG, JPEG or WebP according to the extension; the folder is created if needed."""
    path = Path(path)
    fmt = SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(f"Cannot save '{path.name}': use .png, .jpg or .webp.")
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    img.convert("RGB").save(path, fmt, **options)
    return path
