"""Make the example pictures from code, so examples/ holds nothing of anyone else's.

python examples/make_examples.py  ->  content_generated_face.png, style_generated_swirls.png,
style_generated_mosaic.png, style_generated_waves.png
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent


def face(size: int = 512) -> Image.Image:
    """A painted-looking head and shoulders: shaded skin, hair, eyes with highlights, a smile."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:size, 0:size] / size
    bg = np.stack([0.55 + 0.2 * yy, 0.65 + 0.1 * xx, 0.75 - 0.1 * yy], -1)
    img = Image.fromarray((bg * 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    s = size / 512
    d.ellipse([96 * s, 400 * s, 416 * s, 700 * s], fill=(60, 90, 140))  # shoulders
    d.rectangle([216 * s, 330 * s, 296 * s, 430 * s], fill=(214, 160, 130))  # neck
    d.ellipse([120 * s, 60 * s, 392 * s, 300 * s], fill=(70, 45, 30))  # hair back
    d.ellipse([146 * s, 110 * s, 366 * s, 390 * s], fill=(226, 176, 146))  # face
    d.chord([140 * s, 70 * s, 372 * s, 250 * s], 180, 360, fill=(80, 52, 34))  # fringe
    for cx in (208, 304):
        d.ellipse([(cx - 26) * s, 208 * s, (cx + 26) * s, 240 * s], fill=(250, 250, 250))
        d.ellipse([(cx - 12) * s, 210 * s, (cx + 12) * s, 238 * s], fill=(70, 110, 60))
        d.ellipse([(cx - 6) * s, 217 * s, (cx + 6) * s, 231 * s], fill=(20, 20, 20))
        d.ellipse([(cx - 2) * s, 216 * s, (cx + 3) * s, 221 * s], fill=(255, 255, 255))
        d.arc([(cx - 30) * s, 186 * s, (cx + 30) * s, 210 * s], 200, 340, fill=(60, 40, 25), width=int(6 * s))
    d.polygon([(256 * s, 240 * s), (240 * s, 290 * s), (270 * s, 292 * s)], fill=(205, 150, 122))
    d.chord([206 * s, 300 * s, 306 * s, 350 * s], 0, 180, fill=(170, 60, 70))
    d.chord([214 * s, 302 * s, 298 * s, 326 * s], 0, 180, fill=(245, 240, 235))
    for cx in (186, 326):
        d.ellipse([(cx - 22) * s, 268 * s, (cx + 22) * s, 296 * s], fill=(236, 160, 150))
    img = img.filter(ImageFilter.GaussianBlur(2 * s))
    arr = np.asarray(img).astype(np.float64) + rng.normal(0, 4, (size, size, 3))
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def swirls(size: int = 512) -> Image.Image:
    """Short bright brush strokes following a swirling flow field on deep blue: a Van Gogh-like texture."""
    rng = np.random.default_rng(7)
    img = Image.new("RGB", (size, size), (20, 35, 90))
    d = ImageDraw.Draw(img)
    palette = [(40, 80, 170), (70, 120, 200), (230, 210, 90), (250, 240, 180), (30, 60, 130), (120, 170, 220)]
    centres = rng.random((5, 2)) * size
    for _ in range(9000):
        x, y = rng.random(2) * size
        color = palette[rng.integers(len(palette))]
        for _ in range(8):
            vx, vy = 0.0, 0.0
            for cx, cy in centres:
                dx, dy = x - cx, y - cy
                r2 = dx * dx + dy * dy + 400
                vx += -dy / r2 * 900
                vy += dx / r2 * 900
            n = np.hypot(vx, vy) + 1e-6
            nx, ny = x + 4 * vx / n, y + 4 * vy / n
            d.line([(x, y), (nx, ny)], fill=color, width=3)
            x, y = nx, ny
    return img.filter(ImageFilter.SMOOTH)


def mosaic(size: int = 512) -> Image.Image:
    """Stained glass: Voronoi cells in warm and cool glass colours with dark lead lines."""
    rng = np.random.default_rng(11)
    points = rng.random((220, 2)) * size
    colors = rng.choice(
        np.array([[200, 60, 40], [230, 170, 40], [40, 110, 170], [60, 150, 90], [150, 70, 150], [240, 220, 180]]),
        len(points),
    )
    yy, xx = np.mgrid[0:size, 0:size]
    dist = (xx[..., None] - points[:, 0]) ** 2 + (yy[..., None] - points[:, 1]) ** 2
    order = np.argsort(dist, axis=-1)
    nearest, second = order[..., 0], order[..., 1]
    d1 = np.take_along_axis(dist, nearest[..., None], -1)[..., 0] ** 0.5
    d2 = np.take_along_axis(dist, second[..., None], -1)[..., 0] ** 0.5
    arr = colors[nearest].astype(np.float64)
    arr *= 0.8 + 0.2 * rng.random((size, size, 1))
    arr[(d2 - d1) < 3] = 25
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def waves(size: int = 512) -> Image.Image:
    """Bold wavy bands in orange, red and deep blue: an expressionist sky."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    phase = 14 * yy + 2.5 * np.sin(6 * xx + 3 * yy) + 1.5 * np.sin(11 * xx)
    t = (np.sin(phase) + 1) / 2
    low, high = np.array([30, 40, 110]), np.array([240, 120, 40])
    arr = low + (high - low) * t[..., None]
    arr[..., 1] += 60 * np.sin(3 * phase) ** 2
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1))


if __name__ == "__main__":
    face().save(HERE / "content_generated_face.png")
    swirls().save(HERE / "style_generated_swirls.png")
    mosaic().save(HERE / "style_generated_mosaic.png")
    waves().save(HERE / "style_generated_waves.png")
    print("wrote", ", ".join(p.name for p in sorted(HERE.glob("*.png"))))
