"""What a portrait run will paint, said before it starts, so its time can be told: the same decisions
`pipeline.stylize_portrait` takes (plain mode without faces, one guided painting of the picture, or the whole picture
then each face from its crop), without painting anything. Also the guidance a guided step is timed with."""

from __future__ import annotations

import numpy as np
import torch

from ..config import StyleConfig
from ..frames import Guidance
from ..images import ImageSource, load_image
from ..timing import Painting
from .align import find_faces_any_roll, is_profile
from .crops import face_crop, needs_crop
from .faces import FaceError, find_faces
from .group import SCENE_STYLE_RATIO
from .masks import region_masks
from .pipeline import STYLE_REGION_WEIGHTS, face_square

# Seconds per face outside the engine (warp, masks, flattening, the identity guard's dlib scorings, the paste back),
# on the 2-core development machine: 2.2 s for brad_pitt at 384 px (a guard of one scoring), 4.4 s for unsplash's
# 560 px crop (a guard of several). It is CPU work whatever the device, so it is not scaled with the step's price.
FACE_OVERHEAD_S = 3.0


def portrait_paintings(
    content: ImageSource, style: ImageSource | None, config: StyleConfig
) -> tuple[list[Painting], int]:
    """(the engine runs a portrait run of `config` makes, the number of faces it finishes one by one). Face
    detection is cached per picture, so a picture the page already looked at costs nothing here. No style picture
    yet: one with a face is assumed (portrait mode was asked for)."""
    image = load_image(content)
    whole = Painting(config, (image.height, image.width))
    try:
        faces = find_faces_any_roll(image)
        style_has_face = style is None or bool(find_faces(load_image(style)))
    except FaceError:
        return [whole], 0
    if not faces or not style_has_face:
        return [whole], 0
    chosen = faces if config.face_index is None else [faces[min(config.face_index, len(faces) - 1)]]
    chosen = [f for f in chosen if not is_profile(f)]
    if not chosen:
        return [whole], 0
    if len(chosen) == 1 and not needs_crop(chosen[0], image, several=False):
        return [Painting(config, (image.height, image.width), guided=True)], 1
    paintings = []
    if config.background == "painted":  # the picture the faces are pasted into (group.paint_faces)
        scene = config.replace(style_weight=min(config.style_weight, SCENE_STYLE_RATIO * config.content_weight))
        paintings.append(Painting(scene, (image.height, image.width)))
    out_per_picture = config.size / max(image.size)
    for face in chosen:
        side = face_crop(face, face.width * out_per_picture).side
        paintings.append(Painting(config.replace(size=side, face_index=0), (side, side), guided=True))
    return paintings, len(chosen)


def frontal_landmarks(cx: float = 100, cy: float = 110, s: float = 1.0) -> np.ndarray:
    """68 points in dlib's order for a frontal face about 120*s px wide, centred at (cx, cy): the face a guided step
    is timed on, and the tests' made-up face."""
    pts = []
    for t in np.linspace(np.pi, 0, 17):  # jaw: ear to ear under the face
        pts.append((cx + 60 * s * np.cos(t), cy - 10 * s + 70 * s * np.sin(t)))
    for x0 in (-45, 10):  # brows
        pts += [(cx + (x0 + 9 * i) * s, cy - 40 * s - 4 * s * np.sin(i / 4 * np.pi)) for i in range(5)]
    pts += [(cx, cy + (-30 + 10 * i) * s) for i in range(4)]  # nose bridge
    pts += [(cx + 8 * (i - 2) * s, cy + 12 * s) for i in range(5)]  # nostrils
    for ex in (-28, 28):  # eyes: 6 points each
        pts += [
            (cx + (ex + 12 * np.cos(a)) * s, cy - 20 * s + 5 * s * np.sin(a))
            for a in np.linspace(np.pi, -np.pi, 6, endpoint=False)
        ]
    for width, height, n in ((22, 9, 12), (14, 4, 8)):  # outer lip, inner lip
        pts += [
            (cx + width * np.cos(a) * s, cy + 35 * s + height * np.sin(a) * s)
            for a in np.linspace(np.pi, -np.pi, n, endpoint=False)
        ]
    return np.array(pts, dtype=float)


def calibration_guidance(side: int) -> Guidance:
    """Region masks of a face filling a side x side picture, as portrait mode builds them (its regions, the whole
    face square, their weights), for timing a guided step: a guided step's price hangs on how many regions cover
    each pixel, not on the picture."""
    landmarks = frontal_landmarks(side / 2, side / 2, side / 240)
    masks = region_masks((side, side), landmarks)
    masks["face"] = face_square((side, side), landmarks)
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in masks.items()}
    return Guidance(
        content_masks=tensors,
        style_masks=[tensors],
        region_weights={**STYLE_REGION_WEIGHTS, "face": 1.0},  # a weight changes no step's price
        content_weight_map=torch.ones(1, 1, side, side),
    )
