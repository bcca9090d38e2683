"""Every face of a group photo (or one small or tilted face) painted in portrait mode from its own crop.

The whole picture is painted first (or kept, or flattened, as the background setting asks); then each face is cut
out upright at a size where it is at least `crops.MIN_FACE_PX` across, painted by the single-face pipeline (the
style's face regions matched to that face), and pasted back without a seam. Identity is measured per face on the
finished picture. The single-face painter is passed in, so this module does not import the pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import numpy as np
from PIL import Image
from scipy import ndimage

from .. import engine
from ..config import StyleConfig
from ..frames import Frame
from ..images import resize_long_side
from .crops import Crop, face_crop, paste
from .faces import Face, describe_identity, descriptor, find_faces, identity_distance
from .finish import flatten
from .masks import region_masks

# The whole picture under the faces is painted without guidance or identity guard, so with a milder style than the
# faces' (style over content weight): at the faces' own weights a dark scene was painted in the style's light colours.
SCENE_STYLE_RATIO = 2.0

# A painting of a crop -> its face's identity distance as the finished picture will show it (None: no face there).
SeenScore = Callable[[Image.Image], float | None]
# paint_one(crop picture, its face, config, seen score) -> frames of the single-face pipeline, the last final and
# scored; its identity guard judges each candidate with the seen score.
PaintOne = Callable[[Image.Image, Face, StyleConfig, SeenScore], Iterator[Frame]]


def paint_faces(
    content: Image.Image,
    styles: Sequence[Image.Image],
    faces: list[Face],
    config: StyleConfig,
    paint_one: PaintOne,
    backbone=None,
    should_stop: Callable[[], bool] | None = None,
    note: str = "",
) -> Iterator[Frame]:
    """The whole picture, then each face from its crop; the final frame carries the worst face's identity and
    the message lists each face's."""
    started = time.perf_counter()
    base, frame = yield from _base(content, styles, config, backbone, should_stop, len(faces))
    out_per_picture = base.width / content.width
    crop_scores: list[float | None] = []
    for i, face in enumerate(faces):
        if should_stop is not None and should_stop():
            break
        crop = face_crop(face, face.width * out_per_picture)
        cut = crop.cut(content)
        crop_face = _face_in_crop(cut, face, crop)
        label = f"face {i + 1} of {len(faces)}" if len(faces) > 1 else "the face"
        last = None
        seen = SeenInPicture(content, face, cut, crop_face, crop, base, out_per_picture)
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
    ) -> None:
        self.content, self.face, self.cut, self.crop_face = content, face, cut, crop_face
        self.crop, self.base, self.out_per_picture = crop, base, out_per_picture
        self.masks: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self.reference: np.ndarray | None = None
        self.crop_reference: np.ndarray | None = None

    def paste(self, painted: Image.Image) -> Image.Image:
        if painted.size not in self.masks:
            self.masks[painted.size] = person_mask(self.cut, self.crop_face, painted.size)
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


def person_mask(cut: Image.Image, face: Face, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Where the crop shows the person (face, hair, neck: everything but the background), and where its hair, soft,
    at `size`: found by colour on the photo's crop, widened and feathered so the painted hair's edge and the warp's
    small moves stay inside."""
    picture = cut.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    landmarks = face.landmarks * (size[0] / cut.width)
    masks = region_masks(size, landmarks, image=np.asarray(picture, np.float64) / 255.0)
    face_w = float(np.ptp(landmarks[:17, 0])) or 1.0

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
