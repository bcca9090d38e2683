"""Colour: keep the photo's colours (luminance-only transfer) and recolour a style picture to a palette.

Works on (3,H,W) or (1,3,H,W) RGB tensors in [0, 1]; no networks involved.
"""

from __future__ import annotations

import torch

from .stats import sqrtm_psd, weighted_mean_cov

# ITU-R BT.601 RGB <-> YCbCr (full range, offsets dropped: chroma is centred on 0).
LUMA = (0.299, 0.587, 0.114)  # Y's weights of R, G and B
_RGB_TO_YCC = torch.tensor([LUMA, [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
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


def color_stats(x: torch.Tensor, weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB mean (3, 1) and covariance (3, 3) of a (3, ...) picture in float64, optionally under pixel weights."""
    w = None if weights is None else weights.reshape(-1).double()
    mean, cov = weighted_mean_cov(x.reshape(3, -1).double(), w)
    return mean[:, None], cov


def match_colors(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Recolour `source` so its RGB mean and covariance equal `reference`'s (the monge-kantorovich map)."""
    return transfer_colors(source, color_stats(source), color_stats(reference))


def transfer_colors(source: torch.Tensor, source_stats: tuple, target_stats: tuple) -> torch.Tensor:
    """The linear map taking one RGB Gaussian (mean, cov) to another, applied to a (3, ...) picture."""
    (mean_s, cov_s), (mean_t, cov_t) = source_stats, target_stats
    root_s, inv_root_s = sqrtm_psd(cov_s, floor=1e-10), sqrtm_psd(cov_s, inverse=True, floor=1e-10)
    transfer = inv_root_s @ sqrtm_psd(root_s @ cov_t @ root_s, floor=1e-10) @ inv_root_s
    out = transfer @ (source.reshape(3, -1).double() - mean_s) + mean_t
    return out.to(source.dtype).reshape(source.shape).clamp(0, 1)
