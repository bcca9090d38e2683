"""Every face of a group photo (or one small or tilted face) painted in portrait mode from its own crop.

The whole picture is painted first (or kept, or flattened, as the background setting asks); then each face is cut
out upright at a size where it is at least `crops.MIN_FACE_PX` across, painted by the single-face pipeline (the
style's face regions matched to that face), and pasted back without a seam. Identity is measured per face on the
finished picture. The single-face painter is passed in, so this module does not import the pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image
from scipy import ndimage

from .. import engine
from ..config import StyleConfig
from ..frames import Frame
from ..images import resize_long_side
from .crops import Crop, blend_mask, face_crop, paste
from .faces import Face, describe_identity, descriptor, find_faces, identity_distance
from .finish import flatten
from .masks import region_masks

# The whole picture under the faces is painted without guidance or identity guard, so with a milder style than the
# faces' (style over content weight): at the faces' own weights a dark scene was painted in the style's light colours.
SCENE_STYLE_RATIO = 2.0
#: The hair's recolouring in the whole picture fades out over this outer part of the crop's radius (`blend_mask`):
#: short hair lies inside it and is recoloured fully, long hair that runs on past the crop changes colour over it.
HAIR_RECOLOUR_FADE = 0.15

# A painting of a crop -> its face's identity distance as the finished picture will show it (None: no face there).
SeenScore = Callable[[Image.Image], float | None]
# paint_one(crop picture, its face, config, seen score) -> frames of the single-face pipeline, the last final and
# scored; its identity guard judges each candidate with the seen score.
PaintOne = Callable[[Image.Image, Face, StyleConfig, SeenScore], Iterator[Frame]]
# hair_colours(picture H x W x 3 in [0, 1], hair mask H x W) -> the picture with that hair in the style's hair palette.
HairColours = Callable[[np.ndarray, np.ndarray], np.ndarray]


def paint_faces(
    content: Image.Image,
    styles: Sequence[Image.Image],
    faces: list[Face],
    config: StyleConfig,
    paint_one: PaintOne,
    backbone=None,
    should_stop: Callable[[], bool] | None = None,
    note: str = "",
    hair_colours: HairColours | None = None,
) -> Iterator[Frame]:
    """The whole picture, then each face from its crop; the final frame carries the worst face's identity and
    the message lists each face's. With `hair_colours`, the whole picture's hair is given the style's hair palette
    under each crop's hair mask (`hair_recoloured`) before the faces are pasted into it."""
    started = time.perf_counter()
    planned = resize_long_side(content, config.size).width / content.width
    cuts = [FaceCut.of(content, face, planned) for face in faces]
    base, frame = yield from _base(content, styles, config, backbone, should_stop, len(faces))
    out_per_picture = base.width / content.width  # as painted (the memory guard may have painted it smaller)
    if hair_colours is not None and config.region_colors > 0:
        base = hair_recoloured(base, cuts, hair_colours, out_per_picture)
    crop_scores: list[float | None] = []
    for i, (face, face_cut) in enumerate(zip(faces, cuts)):
        if should_stop is not None and should_stop():
            break
        crop, cut, crop_face = face_cut.crop, face_cut.cut, face_cut.face
        label = f"face {i + 1} of {len(faces)}" if len(faces) > 1 else "the face"
        last = None
        seen = SeenInPicture(content, face, cut, crop_face, crop, base, out_per_picture, face_cut.masks)
        for last in paint_one(cut, crop_face, config.replace(size=crop.side, face_index=0), seen):
            if not last.is_final:
                yield replace(last, painting=label)
        if last is None:
            break
        crop_scores.append(last.identity)
        base = seen.paste(last.image)
        frame = last
    scores = face_identities(content, faces, base, out_per_picture, crop_scores)
    known = [s for s in scores if s is not None]
    words = "; ".join(f"face {i + 1}: {describe_identity(s)}" for i, s in enumerate(scores))
    if len(faces) > 1:
        counted = f"{len(faces)} faces painted in portrait mode, each from its own crop"
    else:
        counted = "the face painted from an upright crop of its own (small in the frame, or tilted)"
    message = "; ".join(m for m in (note, counted, words) if m)
    yield replace(
        frame,
        image=base,
        is_final=True,
        event="final",
        identity=max(known) if known else None,
        identities=tuple(scores),
        message=message,
        elapsed=time.perf_counter() - started,  # the whole run's, not its last painting's
        painting="",
    )


@dataclass(frozen=True)
class FaceCut:
    """One face's upright crop of the photo: where it lies, its pixels, the face found in it and its region masks
    (in the crop's pixels, which its painting has too)."""

    crop: Crop
    cut: Image.Image
    face: Face
    masks: dict[str, np.ndarray]

    @classmethod
    def of(cls, content: Image.Image, face: Face, out_per_picture: float) -> FaceCut:
        crop = face_crop(face, face.width * out_per_picture)
        cut = crop.cut(content)
        crop_face = _face_in_crop(cut, face, crop)
        return cls(crop, cut, crop_face, _cut_masks(cut, crop_face, cut.size))

    def hair_in_picture(self, size: tuple[int, int], out_per_picture: float) -> np.ndarray:
        """The crop's hair mask laid onto the picture of `size`, faded out towards the crop's rim as the paste fades
        (long hair runs on past the crop, and its colour must change gradually there, not at the crop's edge)."""
        hair = self.masks["hair"] * blend_mask(self.cut.width, HAIR_RECOLOUR_FADE)
        laid = self.crop.back(Image.fromarray((hair * 255 + 0.5).astype(np.uint8)), size, out_per_picture)
        return np.asarray(laid, dtype=np.float64) / 255.0


def hair_recoloured(
    base: Image.Image, cuts: list[FaceCut], hair_colours: HairColours, out_per_picture: float
) -> Image.Image:
    """The picture the faces are pasted into, with each face's hair in the style's hair palette.

    A crop's painted hair fades into this picture over its outer part (`crops.HAIR_FADE`), where the paste also
    brings the two paintings' low frequencies together, so hair left in the photo's colour here greyed the crop's
    painted hair at its sides and crown: the astronaut x 077436 at 384 px, blonde, had the style's dark brown in the
    crop and ash grey in the finished picture. Recoloured before the whole picture's painting, it went grey again in
    the painting (the picture's hair 120/117/100 in RGB against 31/27/20 in the crop); recoloured after it, the
    finished hair is 36/32/25. look.py, portrait.py's run: the astronaut x 077436 style_x 0.52 -> 0.45 (identity
    0.451 -> 0.465), VToonify's 038648, painted from a crop too, 0.82 -> 0.62."""
    arr = np.asarray(base.convert("RGB"), dtype=np.float64) / 255.0
    for face_cut in cuts:
        arr = hair_colours(arr, face_cut.hair_in_picture(base.size, out_per_picture))
    return Image.fromarray((arr * 255 + 0.5).clip(0, 255).astype(np.uint8))


def _base(content, styles, config, backbone, should_stop, n_faces):
    """The picture the faces are pasted into, at the output size: painted (a plain run), flat or the photo."""
    work = resize_long_side(content, config.size)
    if config.background == "photo":
        return work, _still(work, config, f"keeping the photo; painting {n_faces} face(s)")
    if config.background == "flat":
        arr = np.asarray(work, dtype=np.float64) / 255.0
        flat = flatten(arr, max(2, round(max(work.size) / 64)), eps=4e-3)
        img = Image.fromarray((flat * 255 + 0.5).clip(0, 255).astype(np.uint8))
        return img, _still(img, config, f"flattened the photo; painting {n_faces} face(s)")
    frame = None
    scene = config.replace(style_weight=min(config.style_weight, SCENE_STYLE_RATIO * config.content_weight))
    for frame in engine.run(work, list(styles), scene, backbone=backbone, should_stop=should_stop):
        if not frame.is_final:
            yield replace(frame, painting="the whole picture")
    return frame.image, frame


def _still(image: Image.Image, config: StyleConfig, message: str) -> Frame:
    return Frame(image, 0, config.steps, config.size, 0, 1, {}, 0.0, False, message=message)


class SeenInPicture:
    """A painted crop pasted into the picture painted so far, and its face scored there: the identity guard's
    measure for a face painted from a crop. Scoring the crop itself, even shrunk to its pasted size, differed from
    the finished picture's score by up to 0.04 (unsplash x the 2-D drawing, 384 px: 0.477 on the crop, 0.516 in the
    picture), enough to leave a face the guard had passed above its target. Where the finished picture shows no face
    there (too small for the detector), the crop is scored alone at its pasted size, as before."""

    def __init__(
        self,
        content: Image.Image,
        face: Face,
        cut: Image.Image,
        crop_face: Face,
        crop: Crop,
        base: Image.Image,
        out_per_picture: float,
        cut_masks: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.content, self.face, self.cut, self.crop_face = content, face, cut, crop_face
        self.crop, self.base, self.out_per_picture = crop, base, out_per_picture
        self.cut_masks = cut_masks  # the crop's region masks at its own size, when already found
        self.masks: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self.reference: np.ndarray | None = None
        self.crop_reference: np.ndarray | None = None

    def paste(self, painted: Image.Image) -> Image.Image:
        if painted.size not in self.masks:
            known = self.cut_masks if painted.size == self.cut.size else None
            self.masks[painted.size] = person_mask(self.cut, self.crop_face, painted.size, known)
        person, hair = self.masks[painted.size]
        return paste(self.base, painted, self.crop, self.out_per_picture, person=person, hair=hair)

    def __call__(self, painted: Image.Image) -> float | None:
        if self.reference is None:
            self.reference = descriptor(self.content, self.face)
        picture = self.paste(painted)
        (score,) = face_identities(self.content, [self.face], picture, self.out_per_picture, [None], [self.reference])
        return score if score is not None else self._at_pasted_size(painted)

    def _at_pasted_size(self, painted: Image.Image) -> float | None:
        """The crop alone, shrunk to its pasted size: for a face too small in the finished picture for the detector
        to find (the score the picture's identity then falls back on too)."""
        seen = min(1.0, self.face.width * self.out_per_picture / max(1.0, self.crop_face.width))
        size = (max(1, round(painted.width * seen)), max(1, round(painted.height * seen)))
        if self.crop_reference is None:
            self.crop_reference = descriptor(self.cut, self.crop_face)
        small = painted.resize(size, Image.Resampling.LANCZOS)
        return identity_distance(self.cut, small, self.crop_face, self.crop_reference)


def _cut_masks(cut: Image.Image, face: Face, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """The region masks of the photo's crop at `size`, found by colour."""
    picture = cut.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    return region_masks(size, face.landmarks * (size[0] / cut.width), image=np.asarray(picture, np.float64) / 255.0)


def person_mask(
    cut: Image.Image, face: Face, size: tuple[int, int], masks: dict[str, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Where the crop shows the person (face, hair, neck: everything but the background), and where its hair, soft,
    at `size`: found by colour on the photo's crop (or the crop's `masks` at that size), widened and feathered so
    the painted hair's edge and the warp's small moves stay inside."""
    masks = _cut_masks(cut, face, size) if masks is None else masks
    face_w = float(np.ptp(face.landmarks[:17, 0]) * size[0] / cut.width) or 1.0

    def widened(mask: np.ndarray) -> np.ndarray:
        grown = ndimage.maximum_filter(mask, size=max(3, round(0.08 * face_w)))
        return np.clip(ndimage.gaussian_filter(grown, sigma=max(1.0, 0.05 * face_w)), 0, 1)

    return widened(1.0 - masks["background"]), widened(masks["hair"])


def _face_in_crop(cut: Image.Image, face: Face, crop: Crop) -> Face:
    """The face found again in its upright crop (better landmarks than on the tilted or tiny original), the one
    nearest the middle; the original's landmarks carried over when the detector misses it there."""
    found = find_faces(cut)
    middle = np.array([cut.width, cut.height]) / 2
    if found:
        nearest = min(found, key=lambda f: float(np.linalg.norm(f.landmarks.mean(0) - middle)))
        if np.linalg.norm(nearest.landmarks.mean(0) - middle) < cut.width / 4:
            return nearest
    lm = crop.to_crop(face.landmarks)
    return Face((*lm.min(0), *lm.max(0)), lm, face.detector + "@crop")


def face_identities(
    content: Image.Image,
    faces: list[Face],
    painted: Image.Image,
    out_per_picture: float,
    fallback: list[float | None],
    references: list[np.ndarray] | None = None,
) -> list[float | None]:
    """Each photo face's embedding distance to the face found at the same place in the painting (the crop's own
    score where the finished picture shows no face there). `references`: the photo faces' embeddings, if known."""
    found = find_faces(painted)
    scores = []
    for i, face in enumerate(faces):
        centre = face.landmarks.mean(0) * out_per_picture
        near = [f for f in found if np.linalg.norm(f.landmarks.mean(0) - centre) < face.width * out_per_picture / 2]
        if near:
            ref = descriptor(content, face) if references is None else references[i]
            mine = min(near, key=lambda f: float(np.linalg.norm(f.landmarks.mean(0) - centre)))
            scores.append(float(np.linalg.norm(ref - descriptor(painted, mine))))
        else:
            scores.append(fallback[i] if i < len(fallback) else None)
    return scores
