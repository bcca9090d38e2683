"""Portrait mode against plain mode on the shared portraits and cartoon faces.

For each photo (brad_pitt, 077417, unsplash-rDEOVtE7vOs) and cartoon face (Cartoons_00003_01, Cartoons_00167_01):
identity distance (dlib 128-D, photo vs result), style distance (W2 between Gaussian fits of VGG features of the
result's face region and the style's face region, relu1_1..relu4_1 averaged), wall time; a contact sheet
(photo | style | plain | portrait) in benchmarks/out/. Targets: identity <= 0.45 on every pair in portrait
mode, style distance no worse than plain.

    python benchmarks/portrait.py [--size 384] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from style_core import losses, preset, stylize
from style_core.backbone import VGGFeatures
from style_core.engine import to_tensor
from style_core.images import load_image, resize_long_side
from style_core.portrait.faces import find_faces, identity_distance
from style_core.portrait.masks import region_masks
from style_core.weights import load_weights

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "out"
PHOTOS = ["brad_pitt.jpg", "077417.jpg", "unsplash-rDEOVtE7vOs.jpg"]
CARTOONS = ["Cartoons_00003_01.jpg", "Cartoons_00167_01.jpg"]
LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]


def face_mask(img: Image.Image, fallback: np.ndarray | None = None) -> torch.Tensor | None:
    """The face region (skin and features) of the largest face, or of `fallback` landmarks when none is found."""
    faces = find_faces(img)
    landmarks = faces[0].landmarks if faces else fallback
    if landmarks is None:
        return None
    m = region_masks(img.size, landmarks)
    return torch.from_numpy(np.clip(sum(m[r] for r in ("skin", "eyes", "brows", "nose", "mouth")), 0, 1))


def style_distance(
    net: VGGFeatures, result: Image.Image, style: Image.Image, fallback: np.ndarray | None = None
) -> float | None:
    """Mean over layers of W2 between the result's face region and the style's face region.

    A result whose face is no longer found (plain mode can dissolve it) is measured where the photo's face was:
    `fallback` holds the photo's landmarks in the result's pixels."""
    mr, ms = face_mask(result, fallback), face_mask(style)
    if mr is None or ms is None:
        return None
    with torch.no_grad():
        fr, fs = net(to_tensor(result, torch.device("cpu"))), net(to_tensor(style, torch.device("cpu")))
        values = [
            float(losses.w2_distance(*losses.mean_cov(fr[n], mr), losses.Gaussian.fit(*losses.mean_cov(fs[n], ms))))
            for n in LAYERS
        ]
    return float(np.mean(values))


def label(img: Image.Image, text: str, size: int) -> Image.Image:
    tile = Image.new("RGB", (size, size + 22), "white")
    tile.paste(resize_long_side(img, size), (0, 0))
    ImageDraw.Draw(tile).text((4, size + 4), text, fill="black")
    return tile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    w = load_weights("vgg19")
    net = VGGFeatures(w.arch, LAYERS, w.state_dict, w.input_format)
    rows, tiles = [], []
    for photo in PHOTOS:
        for cartoon in CARTOONS:
            content, style = load_image(DATA / photo), load_image(DATA / cartoon)
            photo_landmarks = find_faces(content)[0].landmarks
            style_small = resize_long_side(style, args.size)
            row = {"photo": photo, "style": cartoon}
            pics = {}
            for mode, name in (("plain", "balanced"), ("portrait", "pixar-portrait")):
                extra = {"steps": args.steps} if args.steps else {}
                cfg = preset(name, size=args.size, **extra)
                start = time.perf_counter()
                frame = deque(stylize(content, style, cfg), maxlen=1)[0]
                row[f"{mode}_s"] = round(time.perf_counter() - start, 1)
                row[f"{mode}_identity"] = identity_distance(content, frame.image)
                photo_face = photo_landmarks * (frame.image.width / content.width)
                row[f"{mode}_style"] = style_distance(net, frame.image, style_small, photo_face)
                pics[mode] = frame.image
            rows.append(row)
            print(json.dumps(row), flush=True)
            fmt = lambda v: "none" if v is None else f"{v:.2f}"  # noqa: E731
            tiles.append(
                [
                    label(content, photo, 200),
                    label(style, cartoon, 200),
                    label(pics["plain"], f"plain id {fmt(row['plain_identity'])}", 200),
                    label(pics["portrait"], f"portrait id {fmt(row['portrait_identity'])}", 200),
                ]
            )
    OUT.mkdir(exist_ok=True)
    sheet = Image.new("RGB", (4 * 200, len(tiles) * 222), "white")
    for y, row_tiles in enumerate(tiles):
        for x, tile in enumerate(row_tiles):
            sheet.paste(tile, (x * 200, y * 222))
    sheet.save(OUT / "portrait_contact_sheet.png")
    ok_id = all(r["portrait_identity"] is not None and r["portrait_identity"] <= 0.45 for r in rows)
    ok_style = all(
        r["portrait_style"] is not None and r["plain_style"] is not None and r["portrait_style"] <= r["plain_style"]
        for r in rows
    )
    print(f"identity <= 0.45 on every pair: {ok_id}; style distance no worse than plain on every pair: {ok_style}")
    print(f"contact sheet: {OUT / 'portrait_contact_sheet.png'}")
    if args.json:
        print(json.dumps({"rows": rows, "identity_ok": ok_id, "style_ok": ok_style}))


if __name__ == "__main__":
    main()
