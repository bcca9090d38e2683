"""Faces painted from crops: a group of three, and a small face in a large photo (issue #14, targets 3 and 4).

- group: the three shared portraits (brad_pitt, 077417, unsplash-rDEOVtE7vOs) side by side, built here at run time
  (never saved in the project), painted in portrait mode with every face; identity per face, target <= 0.5 each.
- small: anchors/038648_input.jpg (a small face in a wide dark scene), its face painted from a crop at >= 256 px
  across and pasted back; the result and a 3x close-up of the paste's rim go to benchmarks/out/ to be looked at.

    python benchmarks/group.py [group|small ...] [--size 640] [--steps 160]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from style_core import preset, stylize
from style_core.images import load_image
from style_core.portrait.crops import face_crop
from style_core.portrait.faces import find_faces

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA, ANCHORS = SHARED / "data", SHARED / "anchors"
OUT = Path(__file__).resolve().parent / "out"
TOON = ANCHORS / "077436_vtoonify_d.jpg"
GROUP = ["brad_pitt.jpg", "077417.jpg", "unsplash-rDEOVtE7vOs.jpg"]


def group_photo(height: int = 420) -> Image.Image:
    """The three portraits side by side at one height, on a grey strip."""
    photos = [load_image(DATA / name) for name in GROUP]
    photos = [p.resize((round(p.width * height / p.height), height), Image.Resampling.LANCZOS) for p in photos]
    out = Image.new("RGB", (sum(p.width for p in photos), height), (128, 128, 128))
    x = 0
    for p in photos:
        out.paste(p, (x, 0))
        x += p.width
    return out


def run(name: str, photo: Image.Image, size: int, steps: int, background: str) -> dict:
    config = preset("pixar-portrait", size=size, steps=steps, background=background)
    faces = find_faces(photo)
    scale = min(size, max(photo.size)) / max(photo.size)
    crops = [face_crop(f, f.width * scale) for f in faces]
    started = time.perf_counter()
    final = list(stylize(photo, [TOON], config))[-1]
    seconds = time.perf_counter() - started
    OUT.mkdir(parents=True, exist_ok=True)
    final.image.save(OUT / f"{name}_result.png")
    photo.resize(final.image.size).save(OUT / f"{name}_photo.png")
    row = {
        "case": name,
        "size": list(final.image.size),
        "steps": steps,
        "background": background,
        "faces": len(faces),
        "face_px_in_photo": [round(f.width) for f in faces],
        "face_px_painted": [round(f.width / c.per_px) for f, c in zip(faces, crops)],
        "crop_side": [c.side for c in crops],
        "identity_per_face": [None if d is None else round(d, 3) for d in final.identities],
        "seconds": round(seconds, 1),
        "message": final.message,
    }
    if name == "small" and faces:
        _closeup(final.image, faces[0], scale, crops[0])
    return row


def _closeup(image: Image.Image, face, scale: float, crop) -> None:
    """The crop's square and its surroundings at 3x: where a seam would show."""
    cx, cy = (v * scale for v in crop.centre)
    half = crop.side * crop.per_px * scale * 0.75
    box = tuple(round(v) for v in (cx - half, cy - half, cx + half, cy + half))
    part = image.crop(box)
    part.resize((part.width * 3, part.height * 3), Image.Resampling.NEAREST).save(OUT / "small_closeup.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=["group", "small"])
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--steps", type=int, default=160)
    parser.add_argument("--background", default="painted")
    args = parser.parse_args()
    for case in args.cases:
        photo = group_photo() if case == "group" else load_image(ANCHORS / "038648_input.jpg")
        row = run(case, photo, args.size, args.steps, args.background)
        ok = all(d is not None and d <= 0.5 for d in row["identity_per_face"])
        if case == "small":
            ok = ok and all(px >= 256 for px in row["face_px_painted"])
        print(json.dumps({**row, "meets_targets": ok}), flush=True)


if __name__ == "__main__":
    main()
