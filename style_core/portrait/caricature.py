"""Cartoon proportions from landmarks: where each of the 68 points should go so the face reads as an
animated-film character (larger eyes, a narrower nose, a smaller mouth, a shorter, rounder chin, a taller
forehead), and partly toward the style face's own proportions when it has one.

Only target points are computed here; `warp.warp_to_landmarks` moves the pixels (a thin-plate spline), so the
region masks, made from the target points, follow the warp.
"""

from __future__ import annotations

import numpy as np

from .masks import BROW_L, BROW_R, EYE_L, EYE_R, JAW, MOUTH
from .warp import similarity_align

NOSE_WINGS = slice(31, 36)
INNER_LIP = slice(60, 68)

# At cartoon strength 1 (per feature: linear scale about its own centre, or a shift in face heights).
EYE_GROWTH = 0.35  # eyes 1.35x as wide and tall: 1.8x the area
EYE_OPENING = 0.15  # and a little rounder (taller than wide)
NOSE_NARROWING = 0.22
MOUTH_SHRINK = 0.18
CHIN_LIFT = 0.07  # the chin moves up by this share of the brow-to-chin height
JAW_ROUNDING = 0.5  # the jaw's corners move this far toward a circle through its ends and the chin
BROW_LIFT = 0.05  # brows move up, making room for the eyes and a taller forehead


def _face_frame(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The face's own axes: a unit vector along the eye line, one down the face, and the brow-to-chin height."""
    across = lm[EYE_L].mean(0) - lm[EYE_R].mean(0)
    across = across / (np.linalg.norm(across) or 1.0)
    down = np.array([-across[1], across[0]])
    height = float(np.dot(lm[8] - lm[17:27].mean(0), down)) or 1.0
    return across, down, height


def _in_frame(points: np.ndarray, centre: np.ndarray, across: np.ndarray, down: np.ndarray) -> np.ndarray:
    d = points - centre
    return np.stack([d @ across, d @ down], -1)


def _from_frame(local: np.ndarray, centre: np.ndarray, across: np.ndarray, down: np.ndarray) -> np.ndarray:
    return centre + local[:, :1] * across + local[:, 1:] * down


def cartoon_landmarks(landmarks: np.ndarray, strength: float) -> np.ndarray:
    """The 68 points moved toward animated-film proportions; strength 0 leaves them where they are.

    Works in the face's own frame (eye line and its normal), so a tilted face is exaggerated along its axes."""
    lm = np.asarray(landmarks, float)
    if strength <= 0:
        return lm.copy()
    s = float(strength)
    across, down, height = _face_frame(lm)
    out = lm.copy()

    def feature(idx: slice, sx: float, sy: float, shift_down: float = 0.0) -> None:
        c = lm[idx].mean(0)
        local = _in_frame(lm[idx], c, across, down) * np.array([sx, sy])
        out[idx] = _from_frame(local, c + shift_down * height * down, across, down)

    grow = 1 + EYE_GROWTH * s
    for eye in (EYE_R, EYE_L):
        feature(eye, grow, grow * (1 + EYE_OPENING * s))
    for brow in (BROW_R, BROW_L):
        feature(brow, 1 + 0.1 * s, 1.0, -BROW_LIFT * s)
    # The nose: narrower wings and bridge about the face's centre line, the tip a little shorter.
    feature(NOSE_WINGS, 1 - NOSE_NARROWING * s, 1.0, -0.02 * s)
    feature(slice(27, 31), 1 - NOSE_NARROWING * s, 1 - 0.1 * s)
    for lips in (MOUTH, INNER_LIP):
        feature(lips, 1 - MOUTH_SHRINK * s, 1 - 0.5 * MOUTH_SHRINK * s, -0.5 * CHIN_LIFT * s)
    # The lower face: chin up, jaw corners toward a round contour through the jaw's ends and the (lifted) chin.
    jaw = lm[JAW]
    centre = 0.5 * (jaw[0] + jaw[16])
    local = _in_frame(jaw, centre, across, down)
    local[:, 1] *= 1 - CHIN_LIFT * s * height / max(float(local[8, 1]), 1e-6)
    half_width = 0.5 * abs(local[16, 0] - local[0, 0]) or 1.0
    depth = max(float(local[8, 1]), 1e-6)
    angle = np.arctan2(local[:, 1] / depth, local[:, 0] / half_width)
    ellipse = np.stack([half_width * np.cos(angle), depth * np.sin(angle)], -1)
    below = local[:, 1] > 0
    local[below] += JAW_ROUNDING * s * (ellipse[below] - local[below])
    out[JAW] = _from_frame(local, centre, across, down)
    return out


def target_landmarks(content: np.ndarray, style: np.ndarray | None, toward_style: float, cartoon: float) -> np.ndarray:
    """Where the photo's points go: `toward_style` of the way to the style face's similarity-aligned points (when
    the style has a face), then the cartoon proportions at strength `cartoon` on top."""
    content = np.asarray(content, float)
    moved = content
    if style is not None and toward_style > 0:
        aligned = similarity_align(np.asarray(style, float), content)
        moved = content + min(toward_style, 1.0) * (aligned - content)
    return cartoon_landmarks(moved, cartoon)
