"""Make the example pictures from code, so examples/ holds nothing of anyone else's.

python examples/make_examples.py [--result]  ->  content_generated_face.png, style_generated_swirls.png,
style_generated_mosaic.png, style_generated_waves.png, style_generated_toon_face.png (an animated-film face: the
style picture of the first example, in portrait mode); with --result, the first example's result painted in portrait
mode, result_generated_toon_portrait.png
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


def toon_face(size: int = 512) -> Image.Image:
    """An animated-film character's face: a round head with soft shading, big eyes with large irises and two
    highlights, a button nose, a wide smile, glossy red hair with a side fringe, on a warm studio backdrop."""
    s = size / 512
    yy, xx = np.mgrid[0:size, 0:size] / size
    bg = np.stack([0.95 - 0.25 * yy, 0.78 - 0.2 * yy, 0.55 + 0.1 * xx], -1)  # warm backdrop, lighter at the top
    img = Image.fromarray((bg * 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    d.ellipse([110 * s, 420 * s, 402 * s, 680 * s], fill=(90, 150, 110))  # shoulders: a green sweater
    d.rectangle([222 * s, 340 * s, 290 * s, 440 * s], fill=(236, 178, 142))  # neck
    d.ellipse([104 * s, 50 * s, 408 * s, 330 * s], fill=(178, 62, 34))  # hair back
    d.ellipse([136 * s, 96 * s, 376 * s, 392 * s], fill=(250, 200, 165))  # face
    shade = Image.new("L", (size, size), 0)
    ImageDraw.Draw(shade).ellipse([150 * s, 110 * s, 330 * s, 330 * s], fill=90)  # a soft highlight on the face
    img.paste((255, 226, 200), (0, 0), shade.filter(ImageFilter.GaussianBlur(40 * s)))
    d = ImageDraw.Draw(img)
    d.chord([128 * s, 60 * s, 384 * s, 236 * s], 170, 350, fill=(196, 74, 40))  # side-swept fringe
    d.arc([150 * s, 80 * s, 300 * s, 190 * s], 200, 300, fill=(235, 130, 80), width=int(8 * s))  # hair gloss
    for cx in (204, 308):
        d.ellipse([(cx - 36) * s, 200 * s, (cx + 36) * s, 262 * s], fill=(255, 255, 255))  # big eyes
        d.ellipse([(cx - 22) * s, 202 * s, (cx + 22) * s, 260 * s], fill=(60, 120, 190))  # large irises
        d.ellipse([(cx - 11) * s, 216 * s, (cx + 11) * s, 246 * s], fill=(15, 20, 35))  # pupils
        d.ellipse([(cx - 2) * s, 212 * s, (cx + 10) * s, 224 * s], fill=(255, 255, 255))  # highlights
        d.ellipse([(cx - 12) * s, 240 * s, (cx - 6) * s, 246 * s], fill=(255, 255, 255))
        d.arc([(cx - 40) * s, 192 * s, (cx + 40) * s, 236 * s], 200, 340, fill=(40, 25, 20), width=int(6 * s))
        d.arc([(cx - 34) * s, 168 * s, (cx + 34) * s, 196 * s], 200, 340, fill=(150, 50, 30), width=int(7 * s))
    d.ellipse([246 * s, 274 * s, 268 * s, 290 * s], fill=(232, 160, 130))  # button nose
    d.chord([212 * s, 300 * s, 300 * s, 350 * s], 0, 180, fill=(150, 40, 60))  # smile
    d.chord([222 * s, 302 * s, 290 * s, 322 * s], 0, 180, fill=(255, 250, 245))
    for cx in (178, 334):
        d.ellipse([(cx - 24) * s, 282 * s, (cx + 24) * s, 310 * s], fill=(250, 160, 150))  # cheeks
    return img.filter(ImageFilter.GaussianBlur(1.5 * s))


def render_first_example(size: int = 384) -> Path:
    """The first example's result, painted by this project in portrait mode: the generated face in the style of the
    generated animated-film face (shown on the page beside the examples and in the README)."""
    import sys

    sys.path.insert(0, str(HERE.parent))
    from style_core import preset, stylize

    config = preset("pixar-portrait", size=size)
    final = list(stylize(HERE / "content_generated_face.png", [HERE / "style_generated_toon_face.png"], config))[-1]
    out = HERE / "result_generated_toon_portrait.png"
    final.image.save(out)
    print(f"{out.name}: {final.message}")
    return out


if __name__ == "__main__":
    import sys

    if "--result" in sys.argv:
        render_first_example()
        raise SystemExit
    face().save(HERE / "content_generated_face.png")
    swirls().save(HERE / "style_generated_swirls.png")
    mosaic().save(HERE / "style_generated_mosaic.png")
    waves().save(HERE / "style_generated_waves.png")
    toon_face().save(HERE / "style_generated_toon_face.png")
    print("wrote", ", ".join(p.name for p in sorted(HERE.glob("*.png"))))
