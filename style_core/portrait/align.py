"""Tilted and turned faces: dlib's frontal detector and the region masks assume an upright, frontal face.

A face rolled (head tilted sideways) past what HOG finds is looked for again on copies rotated by +-30 degrees,
its landmarks mapped back; the painting then works on an upright crop (`crops.py`). A face turned to profile
cannot be masked region by region (one eye, half a mouth), so portrait mode says so and paints plain.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from .faces import Face, find_faces

RETRY_ROLLS = (30.0, -30.0)  # HOG finds faces within about +-20 degrees: these cover up to about +-50
UPRIGHT_WITHIN = 8.0  # degrees of roll painted as they are, without rotating a crop
MAX_ROLL = 50.0
PROFILE_RATIO = 0.22  # the nose tip this close to one side of the jaw (share of its width): a profile face
RETRY_LONG_SIDE = 640  # the rotated copies, HOG not upsampled: faces from ~130 px of a 1024 px picture, ~0.05 s each


def roll_degrees(face: Face) -> float:
    """How far the face is rolled: the angle of the line from its right eye to its left one (0: upright;
    positive: the face's left eye lower in the picture, i.e. rolled clockwise)."""
    right, left = face.landmarks[36:42].mean(0), face.landmarks[42:48].mean(0)
    return math.degrees(math.atan2(left[1] - right[1], left[0] - right[0]))


def turned_share(face: Face) -> float:
    """Where the nose tip sits between the jaw's two ends, along the eye line: 0.5 frontal, near 0 or 1 profile."""
    lm = face.landmarks
    angle = math.radians(roll_degrees(face))
    axis = np.array([math.cos(angle), math.sin(angle)])
    ends = lm[[0, 16]] @ axis
    nose = lm[30] @ axis
    return float((nose - ends[0]) / max(ends[1] - ends[0], 1e-6))


def is_profile(face: Face) -> bool:
    share = turned_share(face)
    return not (PROFILE_RATIO <= share <= 1 - PROFILE_RATIO)


def _rotate_points(points: np.ndarray, degrees: float, centre: np.ndarray, new_centre: np.ndarray) -> np.ndarray:
    """Points in a picture rotated by `degrees` (PIL's sense, counter-clockwise, expand=True) back to the original."""
    a = math.radians(degrees)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return (points - new_centre) @ rot + centre


def find_faces_any_roll(img: Image.Image) -> list[Face]:
    """`find_faces`, then, if it finds none, the same on copies rotated by `RETRY_ROLLS` (a rotated copy is a second
    and third look, kept cheap: HOG only, not upsampled), with boxes and landmarks in the original picture's pixels."""
    faces = find_faces(img)
    if faces:
        return faces
    scale = min(1.0, RETRY_LONG_SIDE / max(img.size))
    small = img.resize((round(img.width * scale), round(img.height * scale))) if scale < 1 else img
    centre = np.array([small.width, small.height]) / 2
    for degrees in RETRY_ROLLS:
        turned = small.rotate(degrees, resample=Image.Resampling.BILINEAR, expand=True)
        found = find_faces(turned, use_cnn=False, upsample=0)
        if not found:
            continue
        new_centre = np.array([turned.width, turned.height]) / 2
        back = []
        for f in found:
            lm = _rotate_points(f.landmarks, degrees, centre, new_centre) / scale
            box = (*lm.min(0), *lm.max(0))
            back.append(Face(tuple(float(v) for v in box), lm, f"{f.detector}@{degrees:+.0f}"))
        return sorted(back, key=lambda f: f.area, reverse=True)
    return []
