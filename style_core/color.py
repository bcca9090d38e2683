"""Colour: keep the photo's colours (luminance-only transfer) and recolour a style picture to a palette.

Works on (3,H,W) or (1,3,H,W) RGB tensors in [0, 1]; no networks involved.
"""

from __future__ import annotations

import torch

# ITU-R BT.601 RGB <-> YCbCr (full range, offsets dropped: chroma is centred on 0).
_RGB_TO_YCC = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_YCC_TO_RGB = torch.linalg.inv(_RGB_TO_YCC)


def rgb_to_ycc(x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,...jhw->...ihw", _RGB_TO_YCC.to(x), x)


def ycc_to_rgb(x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,...jhw->...ihw", _YCC_TO_RGB.to(x), x)


def preserve_colors(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The stylized luminance with the content's chroma (Gatys et al. 2016, "Preserving Color")."""
    y = rgb_to_ycc(stylized)[..., :1, :, :]
    chroma = rgb_to_ycc(content)[..., 1:, :, :]
    return ycc_to_rgb(torch.cat([y, chroma], dim=-3)).clamp(0, 1)


def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flat = x.reshape(3, -1).double()
    mean = flat.mean(1, keepdim=True)
    centered = flat - mean
    cov = centered @ centered.T / flat.shape[1] + 1e-5 * torch.eye(3, dtype=flat.dtype)
    return mean, cov


def _sqrtm(m: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(m)
    vals = vals.clamp_min(1e-10).sqrt()
    return (vecs * (1 / vals if inverse else vals)) @ vecs.T


def match_colors(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Recolour `source` so its RGB mean and covariance equal `reference`'s (the monge-kantorovich map)."""
    shape = source.shape
    s = source.reshape(3, -1)
    mean_s, cov_s = _stats(s)
    mean_r, cov_r = _stats(reference)
    root_s, inv_root_s = _sqrtm(cov_s), _sqrtm(cov_s, inverse=True)
    transfer = inv_root_s @ _sqrtm(root_s @ cov_r @ root_s) @ inv_root_s
    out = transfer @ (s.double() - mean_s) + mean_r
    return out.to(source.dtype).reshape(shape).clamp(0, 1)
