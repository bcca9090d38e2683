"""Geometric stylization (Yaniv et al. 2019): move the photo's pixels so its landmarks land on target points
(from `caricature.target_landmarks`) with a thin-plate-spline warp, pinned at the picture's border so nothing
tears there. Targets equal to the landmarks leave the picture as it is."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image
from scipy.interpolate import RBFInterpolator


def similarity_align(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """`source` points moved by the rotation, uniform scale and shift that best fit them onto `target` (Umeyama)."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    s, t = source - mu_s, target - mu_t
    u, sig, vt = np.linalg.svd(t.T @ s)
    d = np.ones(2)
    if np.linalg.det(u @ vt) < 0:
        d[-1] = -1
    rotation = u @ np.diag(d) @ vt
    scale = (sig * d).sum() / (s**2).sum()
    return (scale * (rotation @ s.T)).T + mu_t


def _anchors(width: int, height: int, n: int = 5) -> np.ndarray:
    xs, ys = np.linspace(0, width - 1, n), np.linspace(0, height - 1, n)
    border = [(x, 0) for x in xs] + [(x, height - 1) for x in xs] + [(0, y) for y in ys[1:-1]]
    border += [(width - 1, y) for y in ys[1:-1]]
    return np.array(border, dtype=float)


def warp_to_landmarks(img: Image.Image, content_lm: np.ndarray, target: np.ndarray) -> Image.Image:
    """The photo warped so that its landmarks `content_lm` move to `target` (both in the picture's pixels)."""
    content_lm, target = np.asarray(content_lm, float), np.asarray(target, float)
    if np.allclose(content_lm, target):
        return img
    w, h = img.size
    anchors = _anchors(w, h)
    # Backward map: for each output pixel, where to read in the photo (target landmarks -> photo landmarks).
    spline = RBFInterpolator(
        np.concatenate([target, anchors]),
        np.concatenate([content_lm, anchors]),
        kernel="thin_plate_spline",
        smoothing=1.0,
    )
    step = max(4, round(max(w, h) / 96))
    gx, gy = np.arange(0, w + step, step, dtype=float), np.arange(0, h + step, step, dtype=float)
    grid = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
    coarse = torch.from_numpy(spline(grid).reshape(len(gy), len(gx), 2).astype(np.float32)).permute(2, 0, 1)
    fine = F.interpolate(
        coarse[None],
        size=(round((len(gy) - 1) * step) + 1, round((len(gx) - 1) * step) + 1),
        mode="bilinear",
        align_corners=True,
    )[0, :, :h, :w]
    norm = torch.stack([fine[0] / (w - 1) * 2 - 1, fine[1] / (h - 1) * 2 - 1], -1)[None]
    src = TF.to_tensor(img)[None]
    out = F.grid_sample(src, norm, mode="bilinear", padding_mode="border", align_corners=True)
    return TF.to_pil_image(out[0].clamp(0, 1))
