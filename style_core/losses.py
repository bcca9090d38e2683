"""Loss terms as pure tensor functions: content, Gram, Wasserstein-2, total variation, and masked variants.

The objective (`objective.py`) composes them; tests compare it with the formulas written out directly.

Statistics are always accumulated in float32, also when the features come out of bf16/fp16 autocast.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .stats import sqrtm_psd, weighted_mean_cov


def content_loss(
    features: torch.Tensor, target: torch.Tensor, normalized_map: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared feature difference; with a map from `normalized_weight_map`, weighted per pixel instead."""
    if normalized_map is None:
        return F.mse_loss(features.float(), target.float())
    return ((features.float() - target.float()).square() * normalized_map).sum()


def normalized_weight_map(weight_map: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """A (1,1,h,w) map resized to features of `shape` and divided by (its sum x channels): made once per scale."""
    w = weight_map.float()
    if w.shape[-2:] != shape[-2:]:
        w = F.interpolate(w, size=shape[-2:], mode="bilinear", align_corners=False)
    return w / (w.sum() * shape[1]).clamp_min(1e-8)


@dataclass(frozen=True)
class SparseMask:
    """A soft mask at one feature resolution, kept as the pixels it covers: a region costs its own area."""

    index: torch.Tensor  # flat pixel indices where the mask is above a threshold
    weight: torch.Tensor  # the mask's value at those pixels
    height: int
    width: int


def sparse_mask(mask: torch.Tensor, h: int, w: int, threshold: float = 1e-3) -> SparseMask:
    """Resize a soft (H, W) mask to (h, w) and keep its covered pixels."""
    m = _fit_mask(mask, h, w).reshape(-1)
    index = torch.nonzero(m > threshold).squeeze(1)
    return SparseMask(index, m.index_select(0, index), h, w)


def _masked_pixels(
    flat: torch.Tensor, mask: torch.Tensor | SparseMask, h: int, w: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, n) features of the covered pixels and their (n,) weights."""
    if not isinstance(mask, SparseMask):
        mask = sparse_mask(mask, h, w)
    elif (mask.height, mask.width) != (h, w):
        raise ValueError(f"mask made for {mask.height}x{mask.width} features, used on {h}x{w}")
    return select_pixels(flat, mask.index), mask.weight


def select_pixels(flat: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Columns `index` of a (C, pixels) matrix; of a channels-last map's transposed rows, gathered as rows (one
    contiguous read per pixel, and a cheaper backward)."""
    if flat.stride(0) == 1 and flat.shape[0] > 1:
        return flat.T.index_select(0, index).T
    return flat.index_select(1, index)


@dataclass(frozen=True)
class PackedMasks:
    """Every region's covered pixels at one feature resolution behind one index: a step gathers (and its
    backward pass scatters) once per layer instead of once per region."""

    index: torch.Tensor
    weight: torch.Tensor
    spans: dict[str, tuple[int, int]]
    height: int
    width: int


def pack_masks(masks: dict[str, torch.Tensor], h: int, w: int) -> PackedMasks:
    parts = {r: sparse_mask(m, h, w) for r, m in masks.items()}
    spans, start = {}, 0
    for r, part in parts.items():
        spans[r] = (start, start + len(part.index))
        start += len(part.index)
    return PackedMasks(
        torch.cat([p.index for p in parts.values()]), torch.cat([p.weight for p in parts.values()]), spans, h, w
    )


def _channels_last(f: torch.Tensor) -> bool:
    return f.shape[0] == 1 and not f.is_contiguous() and f.is_contiguous(memory_format=torch.channels_last)


def channel_matrix(features: torch.Tensor, upcast: bool = True) -> torch.Tensor:
    """The (C, B*H*W) matrix of a feature map in float32 (or, `upcast=False`, in its own precision), without a copy
    in either memory layout: a channels-last map (the bf16 twin's) is read as its (pixels, C) rows, transposed,
    since reshaping it to (C, pixels) would copy it, and its backward again, at every layer of every step."""
    f = features.float() if upcast else features
    c = f.shape[1]
    if _channels_last(f):
        return f.permute(0, 2, 3, 1).reshape(-1, c).T
    return f.reshape(c, -1) if f.shape[0] == 1 else f.permute(1, 0, 2, 3).reshape(c, -1)


def gather_regions(features: torch.Tensor, packed: PackedMasks) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Each region's (C, n) pixels and (n,) mask weights, from one gather (of rows, on a channels-last map)."""
    pixels = select_pixels(channel_matrix(features), packed.index)
    # One split, not a slice per region: each slice's backward would fill and copy a zero tensor of all the
    # regions' pixels (measured: 30 % of a portrait step at 362 px), a split's backward is one concatenation.
    lengths = [b - a for a, b in packed.spans.values()]
    parts = pixels.split(lengths, dim=1)
    return {r: (part, packed.weight[a:b]) for (r, (a, b)), part in zip(packed.spans.items(), parts)}


def weighted_gram(pixels: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Gram of (C, n) pixels weighted by a soft mask, normalised by C times the mask's area."""
    weighted = pixels * weight.sqrt()
    return weighted @ weighted.T / (pixels.shape[0] * weight.sum().clamp_min(1.0))


@dataclass(frozen=True)
class GramMatch:
    """mean((k A A^T - T)^2) for (C, n) pixels A against a fixed target T, set up once per scale.

    Computed (by `gram_terms`) as `factor * raw(A)` so a caller summing many terms folds `factor` into its own
    weights, and `raw` is the fewest kernels: with n >= C it is mse(A A^T, T / k); with fewer pixels than channels
    (deep layers at small scales, small face regions) the C x C Gram is never formed:
        ||k A A^T - T||^2 = k^2 (||A^T A||^2 - <(2T/k) A, A> + ||T||^2 / k^2),
    whose elementwise work is on (n, n) and (C, n) instead of (C, C).
    """

    target: torch.Tensor  # T / k (big form) or 2 T / k (small form)
    factor: float
    small: bool
    target_sq: float  # ||T||^2 / k^2 (small form only)

    @classmethod
    def prepare(cls, target: torch.Tensor, k: float, pixels: int) -> GramMatch:
        c = target.shape[0]
        if pixels >= c:
            return cls(target / k, k * k, False, 0.0)
        return cls(target * (2 / k), k * k / (c * c), True, float(target.pow(2).sum()) / (k * k))


@dataclass(frozen=True)
class GramTerm:
    """One region's Gram match at a layer: its columns [start, stop) of the layer's gathered pixels, its per-pixel
    factor (None: all pixels alike) and its GramMatch."""

    start: int
    stop: int
    factor: torch.Tensor | None
    match: GramMatch


def _wide(x: torch.Tensor) -> torch.Tensor:
    """`x` in float32 if it is in a 16-bit float type, else as it is (float32, or float64 in gradient checks)."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


class _GramTerms(torch.autograd.Function):
    """Every region's raw Gram match (see GramMatch) of `pixels[:, start:stop] * factor` at one layer as one
    autograd node.

    Written out because autograd's own graph of these few formulas is most of a portrait step's cost beyond the
    network (torch.profiler, 512 px portrait: the concatenation that puts the regions' gradients back together
    13 % of the run, elementwise products 12 %, matrix products 17 %). Here the Gram's backward is one matrix
    product instead of two (A A^T is symmetric), each region's gradient is written straight into its rows of one
    buffer, no product A = P f is kept for the backward pass, and the factor's two multiplications become one.

    Pixels of the bf16 twin come in as bf16: the losses are computed in float32 (the same values as from pixels
    upcast first), and the large form's gradient W D in bf16, where the matrix product runs 2.5-3x faster on a CPU
    with bf16 units (AMD EPYC, 2 cores, (65536, 128) x (128, 128): 5.4 ms against 14.2 ms). D = A A^T - T is
    formed in float32 first, so rounding it to bf16 costs one bf16 rounding of the gradient, which the bf16
    network's backward pass rounds to anyway. The small form (4 G W - 2 W S, two nearly equal terms near the
    target) stays in float32.
    """

    @staticmethod
    def forward(ctx, pixels: torch.Tensor, terms: list[GramTerm]) -> torch.Tensor:  # type: ignore[override]
        rows = _wide(pixels.T)  # (n, C): contiguous for the bf16 twin's channels-last maps
        values, kept = [], []
        for t in terms:
            w = rows[t.start:t.stop]
            if t.factor is not None:
                w = w * t.factor[:, None]
            m = t.match
            if not m.small:
                d = w.T @ w - m.target
                values.append(d.reshape(-1).dot(d.reshape(-1)) / d.numel())
                kept.append(d)
            else:
                gram = w @ w.T
                s = w @ m.target  # the target is symmetric
                values.append(gram.reshape(-1).dot(gram.reshape(-1)) - s.reshape(-1).dot(w.reshape(-1)) + m.target_sq)
                kept.append((gram, s))
        ctx.save_for_backward(pixels)
        ctx.terms, ctx.kept = terms, kept
        return torch.stack(values)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (pixels,) = ctx.saved_tensors
        rows = pixels.T
        covered = sum(t.stop - t.start for t in ctx.terms) == rows.shape[0]
        out = (torch.empty if covered else torch.zeros)(rows.shape, dtype=rows.dtype, device=rows.device)
        for k, (t, kept) in enumerate(zip(ctx.terms, ctx.kept)):
            r, dst = rows[t.start:t.stop], out[t.start:t.stop]
            if not t.match.small:
                # d/dW of mean((W^T W - T)^2) is 4 W D / C^2; with W = f R, d/dR = 4 f^2 R D / C^2
                torch.mm(r, kept.to(r.dtype), out=dst)
                scale = grad[k] * (4.0 / kept.numel())
                # in dst's own precision: a float32 factor on a bf16 buffer is a mixed-type product, far slower
                dst.mul_((scale if t.factor is None else (t.factor.square() * scale)[:, None]).to(dst.dtype))
            else:
                # d/dW of ||W W^T||^2 - <W S, W> is 4 (W W^T) W - 2 W S
                gram, s = kept
                r = _wide(r)
                w = r if t.factor is None else r * t.factor[:, None]
                into = dst if dst.dtype == w.dtype else torch.empty_like(w)
                torch.mm(gram, w, out=into)
                into.mul_(4).sub_(s, alpha=2)
                into.mul_(grad[k] if t.factor is None else (t.factor * grad[k])[:, None])
                if into is not dst:
                    dst.copy_(into)
        return out.T, None


def gram_terms(pixels: torch.Tensor, terms: list[GramTerm]) -> torch.Tensor:
    """The raw losses of `terms` (one per region) on a layer's (C, n) gathered pixels, as one (len(terms),) tensor."""
    return _GramTerms.apply(pixels, terms)


def gram_match(
    target: torch.Tensor, weight: torch.Tensor | None, pixels: int
) -> tuple[torch.Tensor | None, GramMatch]:
    """How to compare `weighted_gram(P, weight)` of (C, pixels) features P with `target`, fixed for a scale:
    the per-pixel factor f (None: all pixels alike) and the GramMatch m, so that the loss is m(P * f)."""
    c = target.shape[0]
    if weight is None:
        return None, GramMatch.prepare(target, 1 / (c * pixels), pixels)
    k = 1 / (c * max(float(weight.sum()), 1.0))
    return weight.sqrt(), GramMatch.prepare(target, k, pixels)


def gram(features: torch.Tensor, mask: torch.Tensor | SparseMask | None = None) -> torch.Tensor:
    """Gram matrix normalised by C*H*W (as the classic neural-style), optionally over a soft mask's pixels."""
    b, c, h, w = features.shape
    flat = channel_matrix(features)
    if mask is None:
        return flat @ flat.T / (c * flat.shape[1])
    return weighted_gram(*_masked_pixels(flat, mask, h, w))


@dataclass(frozen=True)
class Gaussian:
    """Mean and covariance of a layer's features, with the covariance's square root kept for W2."""

    mean: torch.Tensor
    cov: torch.Tensor
    cov_sqrt: torch.Tensor

    @classmethod
    def fit(cls, mean: torch.Tensor, cov: torch.Tensor) -> Gaussian:
        """A W2 target from a mean and covariance: the square root taken once, in float64."""
        return cls(mean, cov, sqrtm_psd(cov.double()).float())


def mix_moments(
    moments: list[tuple[torch.Tensor, torch.Tensor]], weights: list[float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of a mixture of distributions given by (mean, cov), with weights summing to 1."""
    mean = sum(w * m for w, (m, _) in zip(weights, moments))
    second = sum(w * (c + torch.outer(m, m)) for w, (m, c) in zip(weights, moments))
    return mean, second - torch.outer(mean, mean)


def _fit_mask(mask: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return F.interpolate(
        mask.float().reshape(1, 1, *mask.shape[-2:]), size=(h, w), mode="bilinear", align_corners=False
    ).clamp(0, 1)


def mean_cov(
    features: torch.Tensor, mask: torch.Tensor | SparseMask | None = None, eps: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and covariance over (masked) pixels, in float32."""
    h, w = features.shape[-2], features.shape[-1]
    flat = channel_matrix(features)
    if mask is None:
        return weighted_mean_cov(flat, None, eps)
    return weighted_mean_cov(*_masked_pixels(flat, mask, h, w), eps)


def w2_distance(mean: torch.Tensor, cov: torch.Tensor, target: Gaussian) -> torch.Tensor:
    """Squared Wasserstein-2 distance between a Gaussian fit (mean, cov) and `target`, divided by the channel count.

    tr(sqrtm(S_t^1/2 S S_t^1/2)) is the sum of square roots of eigenvalues; differentiating eigenvalues
    alone avoids the unstable 1/(l_i - l_j) terms that a full eigenvector gradient would bring.
    """
    c = mean.shape[0]
    mixed = target.cov_sqrt @ cov @ target.cov_sqrt
    mixed = (mixed + mixed.T) / 2
    root_trace = torch.linalg.eigvalsh(mixed).clamp_min(1e-8).sqrt().sum()
    mean_term = ((mean - target.mean) ** 2).sum()
    cov_term = torch.diagonal(cov).sum() + torch.diagonal(target.cov).sum() - 2 * root_trace
    return (mean_term + cov_term) / c


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation as mean squared neighbour differences (the classic neural-style form)."""
    img = image.float()
    return F.mse_loss(img[..., 1:, :], img[..., :-1, :]) + F.mse_loss(img[..., :, 1:], img[..., :, :-1])
