"""Shared numerical helpers: the weighted mean and covariance of pixels, and the square root of a PSD matrix.

Used by the style losses (features, float32) and by the colour transfer (RGB, float64); they work in the
dtype they are given.
"""

from __future__ import annotations

import torch


def weighted_mean_cov(
    pixels: torch.Tensor, weight: torch.Tensor | None = None, eps: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (C,) and covariance (C, C) + eps I of (C, n) pixels under (n,) weights (None: all pixels alike)."""
    if weight is None:
        weight = torch.ones(pixels.shape[1], dtype=pixels.dtype, device=pixels.device)
    weights = (weight / weight.sum().clamp_min(1e-8)).reshape(1, -1)
    mean = (pixels * weights).sum(1)
    centered = pixels - mean[:, None]
    cov = (centered * weights) @ centered.T
    return mean, cov + eps * torch.eye(pixels.shape[0], dtype=pixels.dtype, device=pixels.device)


def sqrtm_psd(matrix: torch.Tensor, inverse: bool = False, floor: float = 0.0) -> torch.Tensor:
    """The symmetric square root of a symmetric PSD matrix (or its inverse), eigenvalues clamped at `floor`."""
    vals, vecs = torch.linalg.eigh(matrix)
    roots = vals.clamp_min(floor).sqrt()
    return (vecs * (1 / roots if inverse else roots)) @ vecs.T
