"""One face painted on its own: an upright square crop around it, large enough that the face is at least
`MIN_FACE_PX` across, and its painting put back into the full-size picture without a seam.

A crop is an affine map (rotation about the face, scale, shift) from crop pixels to picture pixels, so a tilted
face is painted upright and rotated back by the same map. The paste fades over a wide band and, before that,
carries the full picture's local colour into the crop's rim, so the two paintings meet without an edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter

from .align import roll_degrees
from .faces import Face

MIN_FACE_PX = 256  # the face's width in the crop's painting, at least
CROP_FACTOR = 2.2  # the crop's side, in face widths: the face, its hair and some of the scene around
#: The crop's middle lies this many face widths above the face's: a head's hair reaches about 1.1 face widths above
#: its middle, its neck and collar run on below, so a centred crop cut a full hairdo at its top edge, where the paste
#: fades to the whole picture's milder painting (the astronaut's hair: dark below, the photo's blonde on top).
CROP_LIFT = 0.2
MAX_CROP_PX = 768  # however large the output: one face's run stays affordable
SMALL_FACE_SHARE = 0.25  # a face narrower than this share of the picture's long side is painted from a crop


@dataclass(frozen=True)
class Crop:
    """Crop pixel (u, v) shows picture pixel centre + per_px * R(angle) (u - side/2, v - side/2)."""

    centre: tuple[float, float]  # in the picture's pixels
    angle: float  # degrees: the face's roll, undone in the crop
    per_px: float  # picture pixels per crop pixel
    side: int  # crop pixels

    def _matrix(self) -> np.ndarray:
        a = math.radians(self.angle)
        return self.per_px * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])

    def to_picture(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, float) - self.side / 2) @ self._matrix().T + np.array(self.centre)

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, float) - np.array(self.centre)) @ np.linalg.inv(self._matrix()).T + self.side / 2

    def cut(self, picture: Image.Image) -> Image.Image:
        """The crop, read from the picture (edges beyond it repeat the nearest picture pixels)."""
        m = self._matrix()
        offset = np.array(self.centre) - m @ np.array([self.side / 2, self.side / 2])
        data = (m[0, 0], m[0, 1], offset[0], m[1, 0], m[1, 1], offset[1])
        padded, pad = _edge_padded(picture, int(self.side * self.per_px))
        data = (data[0], data[1], data[2] + pad, data[3], data[4], data[5] + pad)
        return padded.transform((self.side, self.side), Image.Transform.AFFINE, data, Image.Resampling.BICUBIC)

    def back(self, painted: Image.Image, size: tuple[int, int], out_per_picture: float) -> Image.Image:
        """The crop's painting laid onto a picture of `size` (whose pixel is 1/out_per_picture picture pixels).

        A painting larger than its place in the picture (a small face, painted at MIN_FACE_PX) is first shrunk with
        an antialiasing filter: the affine transform samples its bicubic kernel at the output's pixels only, so at
        a 4x shrink it kept one painted pixel in four, and an eye line or a brow came out as broken dots."""
        shrink = self.per_px * out_per_picture * self.side / painted.width  # output pixels per painted pixel
        if shrink < 1:
            small = (max(1, round(painted.width * shrink)), max(1, round(painted.height * shrink)))
            painted = painted.resize(small, Image.Resampling.LANCZOS)
        inv = np.linalg.inv(self._matrix()) / out_per_picture * (painted.width / self.side)
        offset = self.side / 2 * (painted.width / self.side) - inv @ (np.array(self.centre) * out_per_picture)
        data = (inv[0, 0], inv[0, 1], offset[0], inv[1, 0], inv[1, 1], offset[1])
        return painted.transform(size, Image.Transform.AFFINE, data, Image.Resampling.BICUBIC)


def _edge_padded(picture: Image.Image, pad: int) -> tuple[Image.Image, int]:
    arr = np.pad(np.asarray(picture.convert("RGB")), ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    return Image.fromarray(arr), pad


def needs_crop(face: Face, picture: Image.Image, several: bool) -> bool:
    """Paint this face from its own crop: one of several, small in the frame, or tilted."""
    from .align import UPRIGHT_WITHIN

    small = face.width / max(picture.size) < SMALL_FACE_SHARE
    return several or small or abs(roll_degrees(face)) > UPRIGHT_WITHIN


def face_crop(face: Face, out_face_px: float) -> Crop:
    """The upright square around `face` in which it is max(MIN_FACE_PX, its width in the output) across."""
    lm = face.landmarks
    angle = roll_degrees(face)
    a = math.radians(angle)
    across = np.array([math.cos(a), math.sin(a)])
    width = float(np.ptp(lm[:17] @ across))  # jaw width along the eye line: the same however the face is rolled
    middle = lm[:17].mean(0) * 0.5 + lm[27:36].mean(0) * 0.5  # the middle of the face, a bit above the nose tip
    up = np.array([math.sin(a), -math.cos(a)])  # towards the top of the head, in picture pixels
    centre = middle + CROP_LIFT * width * up
    face_px = max(MIN_FACE_PX, out_face_px)
    side = int(min(MAX_CROP_PX, round(CROP_FACTOR * face_px / 16) * 16))
    per_px = CROP_FACTOR * width / side
    return Crop((float(centre[0]), float(centre[1])), angle, per_px, side)


def blend_mask(side: int, fade: float = 0.4) -> np.ndarray:
    """Where a crop's painting counts, (side, side) in [0, 1]: all of the middle, fading out over the outer `fade`
    of the radius, nothing in the corners (which a rotated crop would leave ragged)."""
    yy, xx = (np.mgrid[0:side, 0:side] + 0.5) / side - 0.5
    r = np.hypot(xx, yy) / 0.5  # 1 at the middle of each edge
    t = np.clip((0.95 - r) / fade, 0, 1)
    return t * t * (3 - 2 * t)


#: The hair's shorter fade: the sides of a head lie at 0.6-0.8 of the crop's radius, where the skin's fade (a neck runs
#: on out of the crop, so its colours must meet the picture's gradually) would mix the crop's painted hair half and
#: half with the whole picture's weaker painting (look.py style_x, astronaut x 077436: 0.71 -> 0.63).
HAIR_FADE = 0.25


def paste(
    base: Image.Image,
    painted: Image.Image,
    crop: Crop,
    out_per_picture: float,
    person: np.ndarray | None = None,
    hair: np.ndarray | None = None,
) -> Image.Image:
    """`painted` (the crop's painting) put back into `base` (the whole picture's painting) without a seam.

    Two steps: the difference between the two paintings, blurred to its low frequencies, is added to the crop where
    the crop fades out (the colours meet), then the crop is faded in with `blend_mask`, times `person` (the head and
    shoulders in the crop, soft, in `painted`'s pixels) when given: the crop's own background, painted from the
    style's background, would otherwise show as a pale square around the head. Where `hair` is given (soft, the same
    pixels) the crop's painting fades out later (HAIR_FADE)."""
    size = base.size
    laid = _unit(crop.back(painted, size, out_per_picture))
    weight = blend_mask(painted.width)
    if person is not None and person.shape == weight.shape:
        weight = weight * person
    if hair is not None and hair.shape == weight.shape:
        weight = np.maximum(weight, blend_mask(painted.width, HAIR_FADE) * hair)
    mask_img = Image.fromarray((weight * 255).astype(np.uint8))
    mask = _unit(crop.back(mask_img, size, out_per_picture))
    inside = _unit(crop.back(Image.new("L", painted.size, 255), size, out_per_picture))
    base_arr = _unit(base)
    radius = max(2.0, 0.06 * crop.side * crop.per_px * out_per_picture)  # 6% of the crop's side in the output
    # The two paintings' difference is taken where the whole picture's will show (the crop faded out), not under the
    # face: the whole picture's own face lies there, unwarped, paler and wider, and its difference, blurred, lit the
    # crop's neck under a warped chin (the astronaut x 077436 at 384 px: a pale band under the chin).
    shown = (1 - mask) * inside
    low = _blur((base_arr - laid) * shown, radius) / np.maximum(_blur(shown, radius), 1e-3)
    laid = laid + low * shown
    out = base_arr * (1 - mask) + laid * mask
    return Image.fromarray((out * 255 + 0.5).clip(0, 255).astype(np.uint8))


def _blur(arr: np.ndarray, radius: float) -> np.ndarray:
    return gaussian_filter(arr, sigma=(radius, radius, 0), mode="nearest")


def _unit(img: Image.Image) -> np.ndarray:
    arr = np.asarray(img, dtype=np.float64) / 255.0
    return arr if arr.ndim == 3 else arr[..., None]


def outline(picture: Image.Image, crop: Crop) -> Image.Image:
    """The picture with the crop's square drawn on it (for looking at where a face was painted from)."""
    out = picture.copy()
    s = crop.side
    corners = crop.to_picture(np.array([(0, 0), (s, 0), (s, s), (0, s), (0, 0)]))
    ImageDraw.Draw(out).line([tuple(p) for p in corners], fill=(255, 0, 0), width=2)
    return out
