"""Portrait mode end to end: find the faces, warp, build region masks and the content-weight map, run the
engine with that guidance, finish the result and score its identity. No face: plain mode, with a message."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image

from .. import engine
from ..config import StyleConfig
from ..frames import Frame, Guidance
from ..images import ImageSource, load_image, resize_long_side
from .align import find_faces_any_roll, is_profile
from .caricature import target_landmarks
from .crops import needs_crop
from .faces import Face, FaceError, describe_identity, descriptor, find_faces, identity_distance
from .finish import (
    cartoon_colors,
    despeckle,
    face_detail_restorer,
    flatten,
    hair_toned,
    skin_lightness,
    skin_toned,
    smooth_skin,
    speck_threshold,
    surface_content,
)
from .group import HairColours, SeenScore, paint_faces
from .masks import REGIONS, content_weight_map, region_masks, scene_mask
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
# The scene inside the face square counts this much less in the whole-face match: a drawing's white paper beside
# its face must not turn up as white patches on a photo's cheek. Half of it still does, in the hair (a silver streak in
# unsplash's hair with Cartoons_00003). Counted out in full, with the style's whole background mask rather than its
# core, the streak went, but look.py's style_x on the three drawing pairs rose from 0.39 / 0.39 / 0.48 to 0.60 / 0.54 /
# 0.64, over their 0.5 target: look.py's face square holds the paper too (README, *What session 18 found*).
SCENE_IN_FACE = 0.5


def hair_in_proportion(
    style_face: np.ndarray, style_hair: np.ndarray, face: np.ndarray, hair: np.ndarray
) -> np.ndarray:
    """The style's face-square weights (`style_face`) with its hair weighted by the photo's share of hair in its own
    square (`face`) over the style's share, when that is below 1 (never up). The whole-face match is one Gram, blind
    to where: a style face framed by long dark hair asked a short-haired photo for as much dark, and the painting laid
    it where it could, a dark shadow over the lower face (Biden's full-length portrait x 077436's toon: identity 0.54;
    brad_pitt's dark jaw, milder)."""
    share = float((face * hair).sum() / max(face.sum(), 1e-6))
    style_share = float((style_face * style_hair).sum() / max(style_face.sum(), 1e-6))
    keep = min(1.0, share / style_share) if style_share > 0 else 1.0
    return (style_face * (1 - (1 - keep) * style_hair)).astype(np.float32)


def _plain(content, styles, config, backbone, should_stop, why: str) -> Iterator[Frame]:
    for frame in engine.run(content, styles, config, backbone=backbone, should_stop=should_stop):
        yield replace(frame, message=(frame.message + "; " if frame.message else "") + why) if frame.is_final else frame


def _unit(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float64) / 255.0


def _to_image(arr: np.ndarray) -> Image.Image:
    return Image.fromarray((arr * 255 + 0.5).clip(0, 255).astype(np.uint8))


MIN_REGION_SHARE = 0.002  # a region under this share of its picture has no statistics worth matching
STAND_INS = {"hair": ("background", "skin"), "background": ("hair", "skin")}


def matched_regions(
    content: dict[str, np.ndarray], styles: list[dict[str, np.ndarray]]
) -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    """Drop the regions that a picture lacks (a style without hair, a close-up with no background), so no region is
    matched to empty statistics (whose normaliser would make it outweigh everything else); the photo's pixels of a
    dropped region join a stand-in (hair and background stand in for each other, then skin)."""

    def present(masks: dict[str, np.ndarray], region: str) -> bool:
        return float(masks[region].mean()) >= MIN_REGION_SHARE

    content, styles = dict(content), [dict(m) for m in styles]
    for region, stand_ins in STAND_INS.items():
        if all(present(m, region) for m in [content, *styles]):
            continue
        for other in stand_ins:
            if other in content and all(present(m, other) for m in styles):
                content[other] = content[other] + content[region]
                break
        del content[region]
        for m in styles:
            m.pop(region, None)
    return content, styles


def face_scale(face: Face, photo: Image.Image, style_face: Face, style: Image.Image) -> float:
    """How much larger (relative to its picture) the photo's face is than the style's: the style picture drawn at
    this many times the photo's size shows its face as wide as the photo's (clamped to 0.3-3: a small face in a
    landscape photo against a close-up drawing still gets its strokes near its own size)."""
    photo_share, style_share = face.width / max(photo.size), style_face.width / max(style.size)
    return float(np.clip(photo_share / max(style_share, 1e-6), 0.3, 3.0))


def _tensors(masks: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {r: torch.from_numpy(m) for r, m in masks.items()}


#: The style's background lends its statistics from where it is this sure (its soft edge left out): along the hair,
#: the face and the clothes that edge held a few percent of their colours, and the painting put them into the photo's
#: background as pale specks (the page's first example at 256 px; measured with look.py at 384 px, unsplash x the
#: drawing style_x 0.57 -> 0.49, the other pairs within -0.05..+0.03).
STYLE_BACKGROUND_CORE = 0.95


def _style_masks(img: Image.Image, face: Face | None) -> tuple[dict[str, np.ndarray], Image.Image]:
    """The style picture's region masks (on its copy at MASK_LONG_SIDE, also returned): the regions its statistics
    are taken from."""
    small = resize_long_side(img, min(MASK_LONG_SIDE, max(img.size)))
    if face is None:  # a style picture without a face lends its whole texture to every region
        return {r: np.ones((small.height, small.width), np.float32) for r in REGIONS}, small
    masks = region_masks(small.size, _landmarks_on(small, img, face), image=_unit(small))
    background = masks["background"]
    masks["background"] = np.where(background >= STYLE_BACKGROUND_CORE, background, 0).astype(np.float32)
    return masks, small


def hair_colours(style: Image.Image, style_face: Face, strength: float) -> HairColours:
    """Hair given the style's hair palette, as the canvas's hair is (`cartoon_colors`), for the whole picture a
    face's crop is pasted into."""
    masks, small = _style_masks(style, style_face)
    palette = _unit(small.convert("RGB"))

    def recolour(picture: np.ndarray, hair: np.ndarray) -> np.ndarray:
        return cartoon_colors(picture, {"hair": hair}, palette, masks, strength)

    return recolour


def _landmarks_on(small: Image.Image, img: Image.Image, face: Face) -> np.ndarray:
    """The style face's landmarks in the pixels of `small`, its resized copy of `img`."""
    return face.landmarks * (small.width / img.width)


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
        faces = find_faces_any_roll(content_img)
        style_faces = [next(iter(find_faces(s)), None) for s in style_imgs]
        missing = "your photo" if not faces else "the style picture" if style_faces[0] is None else ""
        why = f"no face found in {missing}, so it was painted in plain mode" if missing else ""
    except FaceError as exc:
        why = f"portrait mode unavailable ({exc})"
    if not why:
        chosen = faces if config.face_index is None else [faces[min(config.face_index, len(faces) - 1)]]
        if all(is_profile(f) for f in chosen):
            why = "the face is turned too far to the side (profile) for portrait mode, so it was painted in plain mode"
        turned = sum(is_profile(f) for f in chosen)
        chosen = [f for f in chosen if not is_profile(f)]
    if why:
        yield from _plain(content_img, style_imgs, config, backbone, should_stop, why)
        return
    note = ""
    if len(faces) > 1 and config.face_index is not None:
        note = f"{len(faces)} faces found; used face {min(config.face_index, len(faces) - 1) + 1}"
    if turned:
        note = "; ".join(n for n in (note, f"{turned} face(s) in profile left as the whole picture paints them") if n)

    def paint_one(picture: Image.Image, face: Face, cfg: StyleConfig, seen: SeenScore) -> Iterator[Frame]:
        return _paint_face(picture, style_imgs, face, style_faces, cfg, backbone, should_stop, "", seen)

    if len(chosen) > 1 or needs_crop(chosen[0], content_img, several=False):
        # The whole picture's hair in the style's hair palette, less so as the person's own hair colour is kept.
        strength = config.region_colors * (1 - config.hair_tone)
        hair = hair_colours(style_imgs[0], style_faces[0], strength) if strength > 0 else None
        yield from paint_faces(content_img, style_imgs, chosen, config, paint_one, backbone, should_stop, note, hair)
        return
    yield from _paint_face(content_img, style_imgs, chosen[0], style_faces, config, backbone, should_stop, note)


def _paint_face(
    content_img, style_imgs, face, style_faces, config, backbone, should_stop, note, seen: SeenScore | None = None
) -> Iterator[Frame]:
    """One face, the picture painted around it: warp, guided run, finish, background, identity guard (scored with
    `seen` for a crop that will be pasted into a larger picture)."""
    plan = plan_portrait(content_img, style_imgs, face, style_faces, config)
    frames = engine.run(
        plan.canvas, plan.styles, plan.config, backbone=backbone, guidance=plan.guidance, should_stop=should_stop
    )
    for frame in frames:
        if not frame.is_final:
            yield frame
            continue
        image = _finish(frame.image, plan.masks, config, plan.face_width)
        image = _background(image, plan, config.background)
        image, distance = _guard_identity(image, plan, content_img, face, config.identity_target, seen)
        message = "; ".join(m for m in (frame.message, note, describe_identity(distance)) if m)
        yield replace(frame, image=image, identity=distance, message=message)


@dataclass
class PortraitPlan:
    """Everything portrait mode prepares before painting, in the painting's pixels."""

    warped: Image.Image  # the photo at the output size, in cartoon proportions
    flat: np.ndarray  # its flattened surface (H, W, 3) in [0, 1]
    canvas: Image.Image  # what the engine keeps content from and starts at
    masks: dict[str, np.ndarray]
    style_sets: list[tuple[dict[str, np.ndarray], Image.Image]]  # per style picture: masks and the picture
    styles: list[Image.Image]  # the style pictures painted from (in the person's skin and hair colour, if asked)
    guidance: Guidance
    config: StyleConfig  # the run's config, the style picture scaled to the photo's face size
    face_width: float
    landmarks: np.ndarray  # the photo's face at the output size
    target: np.ndarray  # where the warp moved them


def plan_portrait(
    content: Image.Image, styles: list[Image.Image], face: Face, style_faces: list[Face | None], config: StyleConfig
) -> PortraitPlan:
    """Warp to cartoon proportions, segment, flatten and recolour the photo, and build the engine's guidance."""
    work = resize_long_side(content, config.size)
    lm = face.landmarks * (work.width / content.width)
    target = target_landmarks(lm, style_faces[0].landmarks, config.warp_strength, config.cartoon)
    warped = warp_to_landmarks(work, lm, target)
    face_width = float(np.ptp(target[:17, 0]))
    photo = _unit(warped)
    masks = region_masks(warped.size, target, image=photo)
    painted_from, flat = surface_content(photo, masks, face_width, config.flatten)
    style_sets = [_style_masks(img, f) for img, f in zip(styles, style_faces)]
    lightness = skin_lightness(photo, masks["skin"]) if config.skin_tone > 0 else None  # read only to tone
    styles, style_sets = _in_skin_tone(styles, style_faces, style_sets, lightness, config.skin_tone)
    styles, style_sets = _in_hair_colour(styles, style_faces, style_sets, photo, masks["hair"], config.hair_tone)
    content_masks, style_masks = matched_regions(masks, [m for m, _ in style_sets])
    if config.face_style > 0:  # the whole face, as one picture, against the style's whole face
        content_masks["face"] = face_square(warped.size, target) * (1 - SCENE_IN_FACE * masks["background"])
        for m, (small_masks, small), f, img in zip(style_masks, style_sets, style_faces, styles):
            if f is None:  # a style without a face: all of it, as for every other region
                square = np.ones_like(small_masks["skin"])
            else:
                square = face_square(small.size, _landmarks_on(small, img, f))
            m["face"] = square * (1 - SCENE_IN_FACE * small_masks["background"])
            if f is not None:
                m["face"] = hair_in_proportion(m["face"], small_masks["hair"], content_masks["face"], masks["hair"])
    guidance = Guidance(
        content_masks=_tensors(content_masks),
        style_masks=[_tensors(m) for m in style_masks],
        region_weights={**STYLE_REGION_WEIGHTS, "face": config.face_style},
        content_weight_map=torch.from_numpy(content_weight_map(masks, config.keep_face))[None, None],
        keep_whole=face_box(target, warped.size),
    )
    # The style's palette before painting too, so the content loss does not pull the colours back to the photo's.
    first_masks, first_style = style_sets[0]
    first_masks = dict(first_masks)
    if style_faces[0] is not None:
        style_lm = _landmarks_on(first_style, styles[0], style_faces[0])
        first_masks["scene"] = scene_mask(first_masks["background"], style_lm)
    photo_masks = {**masks, "scene": scene_mask(masks["background"], target)}
    canvas = _to_image(cartoon_colors(painted_from, photo_masks, _unit(first_style), first_masks, config.region_colors))
    # The style picture at the scale where its face is as wide as the photo's: textures match at the same size.
    scale = config.style_scale * face_scale(face, content, style_faces[0], styles[0])
    return PortraitPlan(
        warped,
        flat,
        canvas,
        masks,
        style_sets,
        styles,
        guidance,
        config.replace(style_scale=scale),
        face_width,
        lm,
        target,
    )


def _in_skin_tone(
    styles: list[Image.Image],
    style_faces: list[Face | None],
    style_sets: list[tuple[dict[str, np.ndarray], Image.Image]],
    lightness: float | None,
    share: float,
) -> tuple[list[Image.Image], list[tuple[dict[str, np.ndarray], Image.Image]]]:
    """The style pictures with their skin brought `share` of the way to the person's skin `lightness` (`skin_tone`),
    at full size (the painting's statistics) and on their small copies (the canvas's palette). Each region takes the
    style's palette, and a light-skinned still made a dark-skinned person's skin light (Obama's official portrait
    with the project's generated face: the cheeks' median luma 157 -> 185, the still's 186). A style without a face
    has no skin to tone."""
    if share <= 0 or lightness is None:
        return styles, style_sets

    def tone(img: Image.Image, masks: dict[str, np.ndarray]) -> Image.Image:
        return skin_toned(img, masks["skin"], lightness, share)

    return _each_toned(styles, style_faces, style_sets, tone)


def _in_hair_colour(
    styles: list[Image.Image],
    style_faces: list[Face | None],
    style_sets: list[tuple[dict[str, np.ndarray], Image.Image]],
    photo: np.ndarray,
    photo_hair: np.ndarray,
    share: float,
) -> tuple[list[Image.Image], list[tuple[dict[str, np.ndarray], Image.Image]]]:
    """The style pictures with their hair's colours taken `share` of the way to the person's hair (`hair_tone`), at
    full size (the painting's statistics) and on their small copies (the canvas's palette). Hair is a face's most
    visible colour after its skin: Biden's white hair painted in the still's dark brown was a stranger's. A style
    without a face has no hair to tone."""
    if share <= 0:
        return styles, style_sets

    def tone(img: Image.Image, masks: dict[str, np.ndarray]) -> Image.Image:
        return hair_toned(img, masks["hair"], photo, photo_hair, share)

    return _each_toned(styles, style_faces, style_sets, tone)


def _each_toned(
    styles: list[Image.Image],
    style_faces: list[Face | None],
    style_sets: list[tuple[dict[str, np.ndarray], Image.Image]],
    tone: Callable[[Image.Image, dict[str, np.ndarray]], Image.Image],
) -> tuple[list[Image.Image], list[tuple[dict[str, np.ndarray], Image.Image]]]:
    """Each style picture with a face through `tone(picture, its masks)`, at full size and on its small copy (the
    masks fit both); a style picture without a face as it is."""
    toned, toned_sets = [], []
    for img, face, (masks, small) in zip(styles, style_faces, style_sets):
        if face is None:
            toned.append(img)
            toned_sets.append((masks, small))
            continue
        toned.append(tone(img, masks))
        toned_sets.append((masks, tone(small, masks)))
    return toned, toned_sets


def face_square(size: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """The face as one square (1.4 jaw widths across, centred on the nose, as look.py crops it), soft-edged: the
    region whose statistics are matched to the style face's as a whole, on top of the per-part regions, so the face
    reads as the style's face at a glance and not only part by part."""
    lm = np.asarray(landmarks, dtype=np.float64)
    half = 0.7 * float(np.ptp(lm[:17, 0]))
    cx, cy = lm[27:36].mean(0)
    width, height = size
    cols, rows = np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
    edge = max(1.0, 0.05 * half)
    across = np.clip((half - np.abs(cols - cx)) / edge + 0.5, 0, 1)
    down = np.clip((half - np.abs(rows - cy)) / edge + 0.5, 0, 1)
    return (down[:, None] * across[None, :]).astype(np.float32)


def face_box(landmarks: np.ndarray, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """The face with its forehead and hair line, as (top, left, bottom, right) fractions of a picture of `size`:
    what a tiled scale keeps in one tile, so the face is never painted in pieces."""
    (left, top), (right, bottom) = landmarks.min(0), landmarks.max(0)
    w, h = right - left, bottom - top
    box = (top - 0.6 * h, left - 0.15 * w, bottom + 0.1 * h, right + 0.15 * w)
    width, height = size
    return (max(0.0, box[0] / height), max(0.0, box[1] / width), min(1.0, box[2] / height), min(1.0, box[3] / width))


def _background(image: Image.Image, plan: PortraitPlan, mode: str) -> Image.Image:
    """The background as asked: painted (without the specks the style's background has no texture for), flat (the
    photo's simplified colours) or photo (kept)."""
    size = image.size
    background = _resized(plan.masks["background"], size)
    if mode == "painted":
        style_masks, style = plan.style_sets[0]
        threshold = speck_threshold(_unit(style.convert("RGB")), style_masks["background"])
        return _to_image(despeckle(_unit(image), background, threshold))
    keep = background[..., None]
    source = _unit(plan.warped) if mode == "photo" else flatten(plan.flat, max(2, round(max(size) / 64)), eps=4e-3)
    if source.shape[:2] != (size[1], size[0]):
        source = _unit(_to_image(source).resize(size, Image.Resampling.BICUBIC))
    return _to_image(_unit(image) * (1 - keep) + source * keep)


# (geometry, detail, eye size) restored at each step: the flattened photo's facial structure (the middle band of the
# luminance of eyes, brows, nose, mouth, half of it on the skin: shapes, not texture or lighting), then part of the
# way back to the photo's own proportions, and last, where nothing else was enough, part of the way back to the
# photo's eye size. Never its skin texture (the reference is the flattened photo, and only its middle band is used)
# and never its colours. The eye steps are a last resort, tried only while the best score is more than EYES_MARGIN
# above the target: the eyes' size is what reads as cartoon most, so a face that ends a little above the target keeps
# it (unsplash x the 2-D drawing, 384 px, needed them: 0.516 after six steps, 0.492 after).
IDENTITY_STEPS = (
    (0.0, 0.25, 0.0), (0.5, 0.25, 0.0), (1.0, 0.25, 0.0), (1.0, 0.5, 0.0), (1.0, 0.75, 0.0), (1.0, 1.0, 0.0),
    (1.0, 1.0, 0.5), (1.0, 1.0, 1.0),
)
EYES_MARGIN = 0.03
EYES = slice(36, 48)
DETAIL_GAINS = {"eyes": 1.0, "brows": 1.0, "nose": 1.0, "mouth": 1.0, "skin": 0.5}


def _guard_identity(
    image: Image.Image,
    plan: PortraitPlan,
    content: Image.Image,
    face: Face,
    target: float,
    seen: SeenScore | None = None,
) -> tuple[Image.Image, float | None]:
    """Measure identity against the original photo; above `target`, restore structure in steps until it is within.

    The score decides, not a fixed amount: a result that already reads as the person is left as painted. A crop
    is scored as the finished picture will show it (`seen`: pasted back, usually smaller, into the picture).
    """
    if seen is None:
        reference_descriptor = descriptor(content, face)  # scored against up to eight candidates below

        def score(candidate: Image.Image) -> float | None:
            return identity_distance(content, candidate, face, reference_descriptor)
    else:
        score = seen

    distance = score(image)
    if target <= 0 or (distance is not None and distance <= target):
        return image, distance  # (no face found in the result at all: the restoring steps may bring it back)
    size = image.size
    scale = size[0] / plan.warped.width
    mask = sum(g * _resized(plan.masks[r], size) for r, g in DETAIL_GAINS.items())
    structure = plan.flat if plan.config.flatten > 0 else _unit(plan.warped)
    reference = _unit(_to_image(structure).resize(size, Image.Resampling.BICUBIC))
    best = (distance if distance is not None else math.inf, image)
    restore = face_detail_restorer(_unit(image), reference, mask, plan.face_width * scale)
    for geometry, amount, eyes in IDENTITY_STEPS:
        if eyes > 0 and best[0] <= target + EYES_MARGIN:
            break
        candidate = _to_image(restore(amount))
        if geometry > 0:  # move the painted face part of the way back to the photo's own landmarks
            toward = plan.target + geometry * (plan.landmarks - plan.target)
            # The eyes keep their cartoon size, moved only with the rest: their shape is what reads as cartoon, and
            # the proportions a face is known by are the nose, mouth and jaw's. Only the last steps give some back.
            shift = (toward[EYES] - plan.target[EYES]).mean(0)
            toward[EYES] = plan.target[EYES] + shift + eyes * (toward[EYES] - plan.target[EYES] - shift)
            candidate = warp_to_landmarks(candidate, plan.target * scale, toward * scale)
        d = score(candidate)
        if d is not None and d < best[0]:
            best = (d, candidate)
        if d is not None and d <= target:
            break
    return best[1], (best[0] if math.isfinite(best[0]) else None)


def _resized(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if mask.shape == (size[1], size[0]):
        return mask
    return np.asarray(Image.fromarray(mask).resize(size, Image.Resampling.BILINEAR))


def _finish(image: Image.Image, masks: dict[str, np.ndarray], config: StyleConfig, face_width: float) -> Image.Image:
    if config.skin_smoothing <= 0:
        return image
    out_masks = {r: _resized(m, image.size) for r, m in masks.items()}
    scale = image.width / next(iter(masks.values())).shape[1]
    return _to_image(smooth_skin(_unit(image), out_masks, config.skin_smoothing, face_width * scale))
