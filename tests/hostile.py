"""Hostile pictures, made on the fly: each entry is (name, bytes) and what we expect (an error or a picture)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _photo(w: int = 96, h: int = 72, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).convert(mode)


def _animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (64, 64), c) for c in ("red", "blue", "green")]
    return _encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _encode(_photo(80, 40), "JPEG", exif=exif)


def _rgba_border() -> bytes:
    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    img.paste((200, 30, 30, 255), (8, 8, 56, 56))
    return _encode(img, "PNG")


def _palette_transparent() -> bytes:
    img = _photo(64, 64).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return _encode(img, "PNG", transparency=0)


full_jpeg = _encode(_photo(), "JPEG")

# name -> (bytes, expected): "error:<words>" for a refusal whose message holds the words, "ok" for a picture.
CASES: dict[str, tuple[bytes, str]] = {
    "zero_byte.jpg": (b"", "error:empty"),
    "html.jpg": (b"<!doctype html><html><body>hi</body></html>", "error:not a picture"),
    "text.jpg": (b"just some text, not a picture\n" * 10, "error:not a picture"),
    "truncated.jpg": (full_jpeg[: len(full_jpeg) // 2], "error:damaged"),
    "bomb.png": (_png_header_only(60000, 60000), "error:too large"),
    "one_by_one.png": (_encode(Image.new("RGB", (1, 1)), "PNG"), "error:at least"),
    "tall_1x3000.png": (_encode(Image.new("RGB", (1, 3000)), "PNG"), "error:at least"),
    "wide_3000x2.png": (_encode(Image.new("RGB", (3000, 2)), "PNG"), "error:at least"),
    "sixteen_bit.png": (_encode(Image.fromarray(np.full((48, 64), 40000, np.uint16)), "PNG"), "ok"),
    "cmyk.jpg": (_encode(_photo(mode="CMYK"), "JPEG"), "ok"),
    "palette_transparent.png": (_palette_transparent(), "ok"),
    "rgba_border.png": (_rgba_border(), "ok"),
    "animated.gif": (_animated("GIF"), "ok"),
    "animated.webp": (_animated("WEBP"), "ok"),
    "grayscale.png": (_encode(_photo(mode="L"), "PNG"), "ok"),
    **{f"exif_{o}.jpg": (_exif(o), "ok") for o in range(2, 9)},
}
