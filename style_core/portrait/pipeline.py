"""Portrait mode end to end: find the faces, warp, build region masks and the content-weight map, run the
engine with that guidance, finish the result and score its identity. No face: plain mode, with a message."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import numpy as np
import torch
from PIL import Image

from .. import engine
from ..config import StyleConfig
from ..frames import Frame, Guidance
from ..images import ImageSource, load_image, resize_long_side
from .caricature import target_landmarks
from .faces import Face, FaceError, describe_identity, descriptor, find_faces, identity_distance
from .finish import cartoon_colors, cartoon_finish, flatten, restore_face_detail, surface_content
from .masks import REGIONS, content_weight_map, region_masks
from .warp import warp_to_landmarks

STYLE_REGION_WEIGHTS = {
    "skin": 1.0,
    "eyes": 1.0,
    "brows": 0.7,
    "nose": 0.7,
    "mouth": 1.0,
    "hair": 1.0,
    "background": 0.5,
}
MASK_LONG_SIDE = 512


def _plain(content, styles, config, backbone, should_stop, why: str) -> Iterator[Frame]:
    for frame in engine.run(content, styles, config, backbone=backbone, should_stop=should_stop):
        yield replace(frame, message=(frame.message + "; " if frame.message else "") + why) if frame.is_final else frame


def _unit(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float64) / 255.0


def _to_image(arr: np.ndarray) -> Image.Image:
    return Image.fromarray((arr * 255 + 0.5).clip(0, 255).astype(np.uint8))


def _tensors(masks: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {r: torch.from_numpy(m) for r, m in masks.items()}


def _style_masks(img: Image.Image, face: Face | None) -> tuple[dict[str, np.ndarray], Image.Image]:
    small = resize_long_side(img, min(MASK_LONG_SIDE, max(img.size)))
    if face is None:  # a style picture without a face lends its whole texture to every region
        return {r: np.ones((small.height, small.width), np.float32) for r in REGIONS}, small
    return region_masks(small.size, face.landmarks * (small.width / img.width), image=_unit(small)), small


def stylize_portrait(
    content: ImageSource,
    styles: Sequence[ImageSource],
    config: StyleConfig,
    backbone=None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[Frame]:
    """Like `stylize`, with faces matched region by region; the final frame carries the identity score."""
    content_img = load_image(content)
    style_imgs = [load_image(s) for s in styles]
    try:
        faces = find_faces(content_img)
        style_faces = [next(iter(find_faces(s)), None) for s in style_imgs]
        missing = "your photo" if not faces else "the style picture" if style_faces[0] is None else ""
        why = f"no face found in {missing}, so it was painted in plain mode" if missing else ""
    except FaceError as exc:
        why = f"portrait mode unavailable ({exc})"
    if why:
        yield from _plain(content_img, style_imgs, config, backbone, should_stop, why)
        return
    face = faces[min(config.face_index, len(faces) - 1)]
    note = f"{len(faces)} faces found; used face {min(config.face_index, len(faces) - 1) + 1}" if len(faces) > 1 else ""

    work = resize_long_side(content_img, config.size)
    lm = face.landmarks * (work.width / content_img.width)
    target = target_landmarks(lm, style_faces[0].landmarks, config.warp_strength, config.cartoon)
    warped = warp_to_landmarks(work, lm, target)
    lm = target
    face_width = float(np.ptp(lm[:17, 0]))
    masks = region_masks(warped.size, lm, image=_unit(warped))
    painted_from, flat = surface_content(_unit(warped), masks, face_width, config.flatten)
    style_sets = [_style_masks(img, f) for img, f in zip(style_imgs, style_faces)]
    guidance = Guidance(
        content_masks=_tensors(masks),
        style_masks=[_tensors(m) for m, _ in style_sets],
        region_weights=STYLE_REGION_WEIGHTS,
        content_weight_map=torch.from_numpy(content_weight_map(masks, config.keep_face))[None, None],
    )
    # The style's palette before painting too, so the content loss does not pull the colours back to the photo's.
    style_masks, style_small = style_sets[0]
    canvas = _to_image(cartoon_colors(painted_from, masks, _unit(style_small), style_masks, config.region_colors))
    frames = engine.run(canvas, style_imgs, config, backbone=backbone, guidance=guidance, should_stop=should_stop)
    for frame in frames:
        if not frame.is_final:
            yield frame
            continue
        image = _finish(frame.image, masks, style_sets[0], config, face_width)
        image = _background(image, masks, warped, flat, config.background)
        reference = _to_image(flat if config.flatten > 0 else _unit(warped))  # structure, not skin texture
        image, distance = _guard_identity(image, reference, masks, content_img, face, config.identity_target)
        message = "; ".join(m for m in (frame.message, note, describe_identity(distance)) if m)
        yield replace(frame, image=image, identity=distance, message=message)


def _background(
    image: Image.Image, masks: dict[str, np.ndarray], photo: Image.Image, flat: np.ndarray, mode: str
) -> Image.Image:
    """The background as asked: painted (as it is), flat (the photo's simplified colours) or photo (kept)."""
    if mode == "painted":
        return image
    size = image.size
    keep = _resized(masks["background"], size)[..., None]
    source = _unit(photo) if mode == "photo" else flatten(flat, max(2, round(max(size) / 64)), eps=4e-3)
    if source.shape[:2] != (size[1], size[0]):
        source = _unit(_to_image(source).resize(size, Image.Resampling.BICUBIC))
    return _to_image(_unit(image) * (1 - keep) + source * keep)


# (detail, colour) restored at each step: the photo's shapes first, its colours only as a last resort.
IDENTITY_STEPS = ((0.2, 0.0), (0.4, 0.0), (0.6, 0.0), (0.8, 0.0), (1.0, 0.0), (1.0, 0.5), (1.0, 1.0))
DETAIL_GAINS = {"eyes": 1.0, "brows": 1.0, "nose": 1.0, "mouth": 1.0, "skin": 0.5}


def _guard_identity(
    image: Image.Image,
    photo: Image.Image,
    masks: dict[str, np.ndarray],
    content: Image.Image,
    face: Face,
    target: float,
) -> tuple[Image.Image, float | None]:
    """Measure identity; above `target`, restore the photo's facial detail in steps until it is within it.

    The score decides, not a fixed amount: a result that already reads as the person is left as painted.
    """
    reference_descriptor = descriptor(content, face)  # scored against up to eight candidates below
    distance = identity_distance(content, image, face, reference_descriptor)
    if target <= 0 or (distance is not None and distance <= target):
        return image, distance  # (no face found in the result at all: the restoring steps may bring it back)
    size = image.size
    mask = sum(g * _resized(masks[r], size) for r, g in DETAIL_GAINS.items())
    painted, reference = _unit(image), _unit(photo.resize(size, Image.Resampling.BICUBIC))
    best = (distance if distance is not None else math.inf, image)
    for amount, colour in IDENTITY_STEPS:
        restored = restore_face_detail(painted, reference, mask, amount, colour)
        candidate = _to_image(restored)
        d = identity_distance(content, candidate, face, reference_descriptor)
        if d is not None and d < best[0]:
            best = (d, candidate)
        if d is not None and d <= target:
            break
    return best[1], (best[0] if math.isfinite(best[0]) else None)


def _resized(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if mask.shape == (size[1], size[0]):
        return mask
    return np.asarray(Image.fromarray(mask).resize(size, Image.Resampling.BILINEAR))


def _finish(
    image: Image.Image, masks: dict[str, np.ndarray], style_set, config: StyleConfig, face_width: float
) -> Image.Image:
    if config.region_colors <= 0 and config.skin_smoothing <= 0:
        return image
    style_masks, style_small = style_set
    out_masks = {r: _resized(m, image.size) for r, m in masks.items()}
    done = cartoon_finish(
        _unit(image),
        out_masks,
        _unit(style_small),
        style_masks,
        config.region_colors,
        config.skin_smoothing,
        face_width * image.width / next(iter(masks.values())).shape[1],
    )
    return _to_image(done)
