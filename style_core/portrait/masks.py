"""Soft region masks from 68 landmarks: face skin, eyes, brows, nose, mouth, hair/head surround, background.

The same rules run on the photo and on the style picture, so region r of one is matched to region r of the
other (the spatial control of Gatys et al. 2017). Masks are soft and sum to 1 at every pixel.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

REGIONS = ("skin", "eyes", "brows", "nose", "mouth", "hair", "background")
JAW, BROW_R, BROW_L = slice(0, 17), slice(17, 22), slice(22, 27)
NOSE, EYE_R, EYE_L, MOUTH = slice(27, 36), slice(36, 42), slice(42, 48), slice(48, 60)


def _grow(points: np.ndarray, factor: float) -> np.ndarray:
    centre = points.mean(0)
    return centre + (points - centre) * factor


def face_outline(landmarks: np.ndarray) -> np.ndarray:
    """The jaw line closed over a forehead raised above the brows by a third of the brow-to-chin height."""
    jaw = landmarks[JAW]
    brows = landmarks[17:27][::-1]
    lift = 0.35 * (landmarks[8, 1] - landmarks[17:27, 1].mean())
    forehead = brows - np.array([0.0, lift])
    return np.concatenate([jaw, forehead])


def _polygon(size: tuple[int, int], points: np.ndarray, width: int = 0) -> np.ndarray:
    img = Image.new("L", size, 0)
    draw = ImageDraw.Draw(img)
    pts = [tuple(map(float, p)) for p in points]
    if width:
        draw.line(pts, fill=255, width=width, joint="curve")
    else:
        draw.polygon(pts, fill=255)
    return np.asarray(img, dtype=np.float32) / 255.0


def region_masks(size: tuple[int, int], landmarks: np.ndarray, softness: float = 0.02) -> dict[str, np.ndarray]:
    """Masks (H, W) in [0, 1] for each of REGIONS, from landmarks in pixels of an image of `size` (W, H)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    face_w = float(np.ptp(lm[JAW, 0])) or 1.0
    face_h = float(lm[8, 1] - lm[17:27, 1].min()) or 1.0
    eyes = np.maximum(_polygon(size, _grow(lm[EYE_R], 1.8)), _polygon(size, _grow(lm[EYE_L], 1.8)))
    brow_w = max(2, round(face_w * 0.06))
    brows = np.maximum(_polygon(size, lm[BROW_R], brow_w), _polygon(size, lm[BROW_L], brow_w))
    nose = _polygon(size, _grow(np.concatenate([lm[27:28], lm[31:36][[0]], lm[31:36], lm[35:36]]), 1.25))
    nose = np.maximum(nose, _polygon(size, lm[NOSE][:4], max(2, round(face_w * 0.08))))
    mouth = _polygon(size, _grow(lm[MOUTH], 1.2))
    face = _polygon(size, face_outline(lm))
    cx, cy = lm[JAW, 0].mean(), lm[27, 1]
    head = Image.new("L", size, 0)
    ImageDraw.Draw(head).ellipse(
        [cx - 0.95 * face_w, cy - 1.25 * face_h, cx + 0.95 * face_w, cy + 0.75 * face_h], fill=255
    )
    head_a = np.asarray(head, dtype=np.float32) / 255.0

    parts = {"eyes": eyes, "brows": brows * (1 - eyes), "nose": nose, "mouth": mouth}
    taken = np.zeros_like(face)
    for name in ("eyes", "brows", "mouth", "nose"):
        parts[name] = np.clip(parts[name] - taken, 0, 1)
        taken = np.clip(taken + parts[name], 0, 1)
    parts["skin"] = np.clip(face - taken, 0, 1)
    parts["hair"] = np.clip(head_a - np.maximum(face, taken), 0, 1)
    parts["background"] = np.clip(1 - head_a - face, 0, 1)
    radius = max(1.0, softness * face_w)
    soft = {
        k: np.asarray(
            Image.fromarray((v * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32
        )
        / 255.0
        for k, v in parts.items()
    }
    total = sum(soft.values()) + 1e-6
    return {k: soft[k] / total for k in REGIONS}


def content_weight_map(masks: dict[str, np.ndarray], keep_face: float) -> np.ndarray:
    """Per-pixel content weight: features (eyes, brows, nose, mouth) count `keep_face` times skin, which counts
    more than hair and background (the gain-map idea of Selim et al. 2016)."""
    gains = {
        "eyes": keep_face,
        "mouth": keep_face,
        "brows": 0.75 * keep_face,
        "nose": 0.75 * keep_face,
        "skin": 1.0,
        "hair": 0.6,
        "background": 0.4,
    }
    return sum(gains[r] * masks[r] for r in REGIONS).astype(np.float32)
