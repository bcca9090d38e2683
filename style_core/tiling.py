"""A scale optimized tile by tile, for print sizes: the memory of one tile, whatever the size of the picture.

Why tiles can be optimized apart: the style loss compares statistics, and the whole picture's statistics are sums
over its pixels. So the targets are computed once for the whole picture, tile by tile (a Gram or a mean and
covariance accumulated over the tiles' cores: the same numbers as an untiled pass, borders aside), and every tile
is matched against them. Content is kept per tile. Each tile's share of every term is set so that a pixel feels
the same pull as in an untiled run: content normalised by the whole picture's feature magnitude, each region's
style weight scaled by its share of the tile against its share of the picture, the content weight map by the
tile's mean against the picture's.

Tiles overlap (`tile_overlap` px past the core on each side). They run in raster order, each from the picture as
the earlier tiles left it, and are blended in with a linear ramp across the overlap on the sides that meet earlier
tiles, so there is no seam: what a tile does near its own edges (where the network sees zero padding) is faded
out. In portrait mode the cuts avoid the face box (`Guidance.keep_whole`) when it fits in one tile.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from .backbone import VGGFeatures
from .config import StyleConfig, scale_sizes, steps_per_scale, tile_above
from .frames import Guidance
from .memory import margin, picture_pixels
from .networks import run_network
from .objective import STYLE_STATS, Objective, WholeTargets, style_stats_key
from .scale_run import ScaleRun, read_terms

MASK_THRESHOLD = 1e-3  # as losses.sparse_mask: pixels under it are not in a region
MIN_REGION_SHARE = 1e-3  # a region covering less of a tile than this is not matched there


@dataclass(frozen=True)
class Tile:
    """A core (the pixels this tile decides) and its extent (the core and its overlap, within the picture)."""

    top: int
    left: int
    bottom: int
    right: int
    y0: int
    x0: int
    y1: int
    x1: int

    @property
    def extent(self) -> tuple[slice, slice, slice, slice]:
        return (slice(None), slice(None), slice(self.y0, self.y1), slice(self.x0, self.x1))


def _even(start: int, end: int, tile: int) -> list[int]:
    """Boundaries after `start` up to `end` of equal cores at most `tile` long."""
    n = math.ceil((end - start) / tile)
    return [start + round(i * (end - start) / n) for i in range(1, n + 1)] if end > start else []


def cuts(length: int, tile: int, keep: tuple[float, float] | None = None) -> list[int]:
    """Core boundaries 0 < ... < length, cores at most `tile` long; a `keep` span (px) that fits in one core gets a
    core of its own, centred on it, so no cut crosses it."""
    if length <= tile:
        return [0, length]
    if keep is None or keep[1] - keep[0] > tile:
        return [0, *_even(0, length, tile)]
    start = min(max(0, round((keep[0] + keep[1] - tile) / 2)), length - tile)
    return [0, *_even(0, start, tile), start + tile, *_even(start + tile, length, tile)]


def tile_grid(
    h: int, w: int, tile: int, overlap: int, keep: tuple[float, float, float, float] | None = None
) -> list[Tile]:
    """The tiles of an h x w picture in raster order; `keep` = (top, left, bottom, right) as fractions."""
    ys = cuts(h, tile, (keep[0] * h, keep[2] * h) if keep else None)
    xs = cuts(w, tile, (keep[1] * w, keep[3] * w) if keep else None)
    return _tiles(ys, xs, h, w, margin(overlap))


def aligned_grid(h: int, w: int, tile: int, overlap: int) -> list[Tile]:
    """Tiles whose cores start at multiples of 16 (of `tile` rounded up to one): their features line up exactly
    with the whole picture's, for the statistics passes."""
    step = 16 * math.ceil(tile / 16)
    ys, xs = [*range(0, h, step), h], [*range(0, w, step), w]
    return _tiles(ys, xs, h, w, margin(overlap))


def _tiles(ys: list[int], xs: list[int], h: int, w: int, m: int) -> list[Tile]:
    ys, xs = sorted(set(ys)), sorted(set(xs))
    return [
        Tile(t, lft, b, r, max(0, t - m), max(0, lft - m), min(h, b + m), min(w, r + m))
        for t, b in zip(ys, ys[1:])
        for lft, r in zip(xs, xs[1:])
    ]


def blend_weight(tile: Tile, device: torch.device) -> torch.Tensor:
    """(1, 1, h, w) weights of a tile's result over its extent: a ramp from 0 at the extent's edge to 1 at the far
    side of the overlap on the sides that meet earlier tiles (top, left), 1 elsewhere."""

    def ramp(lo: int, hi: int, core_lo: int) -> torch.Tensor:
        pos = torch.arange(lo, hi, device=device, dtype=torch.float32)
        width = 2 * (core_lo - lo)
        if core_lo == 0 or width <= 0:
            return torch.ones_like(pos)
        return ((pos - lo + 0.5) / width).clamp(0, 1)

    return (ramp(tile.y0, tile.y1, tile.top)[:, None] * ramp(tile.x0, tile.x1, tile.left)[None, :])[None, None]


def _downsampling(net: VGGFeatures) -> dict[str, int]:
    factor, out = 1, {}
    for name in net.names:
        if name.startswith("pool"):
            factor *= 2
        out[name] = factor
    return out


def _core_features(f: torch.Tensor, tile: Tile, d: int) -> torch.Tensor:
    """(C, n) float32 features of a tile's core (`d`: the layer's downsampling; cores start at multiples of 16)."""
    fy0, fx0 = (tile.top - tile.y0) // d, (tile.left - tile.x0) // d
    fy1, fx1 = math.ceil(tile.bottom / d) - tile.y0 // d, math.ceil(tile.right / d) - tile.x0 // d
    core = f[0, :, fy0:fy1, fx0:fx1].float()
    return core.reshape(core.shape[0], -1)


def _fitted(mask: torch.Tensor, h: int, w: int) -> torch.Tensor:
    m = F.interpolate(mask.float().reshape(1, 1, *mask.shape[-2:]), size=(h, w), mode="bilinear", align_corners=False)
    m = m.clamp(0, 1)[0, 0]
    return torch.where(m > MASK_THRESHOLD, m, torch.zeros_like(m))


class _Sums:
    """Running sums of weighted features over tiles: enough for a Gram or a mean and covariance."""

    def __init__(self) -> None:
        self.outer: torch.Tensor | None = None
        self.first: torch.Tensor | None = None
        self.weight = 0.0

    def add(self, pixels: torch.Tensor, weight: torch.Tensor | None) -> None:
        weighted = pixels if weight is None else pixels * weight
        outer, first = weighted @ pixels.T, weighted.sum(1)
        self.outer = outer if self.outer is None else self.outer + outer
        self.first = first if self.first is None else self.first + first
        self.weight += pixels.shape[1] if weight is None else float(weight.sum())

    def gram(self, masked: bool) -> torch.Tensor:
        c = self.outer.shape[0]
        return self.outer / (c * (max(self.weight, 1.0) if masked else max(self.weight, 1e-8)))

    def mean_cov(self, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
        n = max(self.weight, 1e-8)
        mean = self.first / n
        cov = self.outer / n - torch.outer(mean, mean)
        return mean, cov + eps * torch.eye(mean.shape[0], dtype=cov.dtype, device=cov.device)


def whole_style_stats(
    run_net: VGGFeatures,
    config: StyleConfig,
    style: torch.Tensor,
    masks: dict[str, torch.Tensor],
    regions: list[str | None],
    tile: int,
) -> dict:
    """A style picture's statistics per (layer, region), as Objective computes them, accumulated over tiles."""
    h, w = style.shape[-2:]
    down = _downsampling(run_net)
    sums = {(layer, r): _Sums() for layer in config.style_layers for r in regions}
    fitted = {
        (layer, r): _fitted(masks[r].to(style.device), math.ceil(h / down[layer]), math.ceil(w / down[layer]))
        for layer in config.style_layers
        for r in regions
        if r in masks
    }
    for t in aligned_grid(h, w, tile, config.tile_overlap):
        with torch.no_grad():
            feats = run_net(style[t.extent])
        for layer in config.style_layers:
            d = down[layer]
            pixels = _core_features(feats[layer], t, d)
            for r in regions:
                weight = None
                if r in masks:
                    rows, cols = slice(t.top // d, math.ceil(t.bottom / d)), slice(t.left // d, math.ceil(t.right / d))
                    weight = fitted[layer, r][rows, cols].reshape(1, -1)
                sums[layer, r].add(pixels, weight)
        del feats
    gram = config.style_loss == "gram"
    return {k: s.gram(k[1] in masks) if gram else s.mean_cov() for k, s in sums.items()}


def whole_content_norm(run_net: VGGFeatures, config: StyleConfig, content: torch.Tensor, tile: int) -> dict[str, float]:
    """Each content layer's normaliser over the whole picture: one over its features' mean square."""
    if not config.normalize_losses:
        return {n: 1.0 for n in config.content_layers}
    h, w = content.shape[-2:]
    down = _downsampling(run_net)
    total = {n: 0.0 for n in config.content_layers}
    count = {n: 0 for n in config.content_layers}
    for t in aligned_grid(h, w, tile, config.tile_overlap):
        with torch.no_grad():
            feats = run_net(content[t.extent])
        for n in config.content_layers:
            core = _core_features(feats[n], t, down[n])
            total[n] += float(core.pow(2).sum())
            count[n] += core.numel()
    return {n: 1 / max(total[n] / max(count[n], 1), 1e-8) for n in config.content_layers}


def _crop(mask: torch.Tensor, box: tuple[float, float, float, float]) -> torch.Tensor:
    """The part of a mask (any resolution, (H, W) or (1, 1, H, W)) under a box of fractions."""
    mh, mw = mask.shape[-2:]
    r0, c0 = math.floor(box[0] * mh), math.floor(box[1] * mw)
    r1, c1 = max(r0 + 1, math.ceil(box[2] * mh)), max(c0 + 1, math.ceil(box[3] * mw))
    return mask[..., r0:r1, c0:c1]


def crop_guidance(guidance: Guidance | None, tile: Tile, h: int, w: int) -> tuple[Guidance | None, float]:
    """A tile's guidance, and the factor on its content weight that keeps the whole picture's balance."""
    if guidance is None:
        return None, 1.0
    box = (tile.y0 / h, tile.x0 / w, tile.y1 / h, tile.x1 / w)
    masks, weights = {}, {}
    for region, mask in guidance.content_masks.items():
        part, whole = _crop(mask, box), float(mask.float().mean())
        share = float(part.float().mean())
        if share < MIN_REGION_SHARE or whole <= 0:
            continue
        masks[region] = part
        weights[region] = guidance.region_weights.get(region, 1.0) * share / whole
    factor, weight_map = 1.0, guidance.content_weight_map
    if weight_map is not None:
        whole_mean = max(float(weight_map.float().mean()), 1e-8)
        weight_map = _crop(weight_map, box)
        factor = float(weight_map.float().mean()) / whole_mean
    return replace(guidance, content_masks=masks, region_weights=weights, content_weight_map=weight_map), factor


class TiledScale:
    """One scale optimized tile by tile against the whole picture's targets. The engine reads it as it reads a
    ScaleRun: `result()`, `read_losses()`, `message`, `failed`."""

    def __init__(
        self,
        net: VGGFeatures,
        config: StyleConfig,
        content: torch.Tensor,
        styles: Sequence[torch.Tensor],
        style_keys: Sequence[str],
        blend: Sequence[float],
        guidance: Guidance | None,
        x: torch.Tensor,
    ) -> None:
        self.net, self.config, self.content, self.blend, self.guidance = net, config, content, list(blend), guidance
        self.x = x.detach().clone()
        h, w = x.shape[-2:]
        self.tiles = tile_grid(h, w, config.tile_size, config.tile_overlap, guidance.keep_whole if guidance else None)
        run_net = run_network(net, config, content.device)
        regions: list[str | None] = list(guidance.content_masks) if guidance and guidance.content_masks else [None]
        stats = [self._style_stats(run_net, s, k, i, regions) for i, (s, k) in enumerate(zip(styles, style_keys))]
        total = sum(guidance.region_weights.get(r, 1.0) for r in regions) if regions != [None] else None
        self.whole = WholeTargets(stats, whole_content_norm(run_net, config, content, config.tile_size), total)
        self.terms: dict[str, torch.Tensor] = {}
        self.message, self.failed = "", False

    def _style_stats(
        self, run_net: VGGFeatures, style: torch.Tensor, key: str, index: int, regions: list[str | None]
    ) -> dict:
        given = self.guidance.style_masks[index] if self.guidance and self.guidance.style_masks else {}
        masks = {r: given[r] for r in regions if r is not None and r in given}
        cache_key = ("tiled", *style_stats_key(run_net, self.config, key, style, regions, masks))
        return STYLE_STATS.get(
            cache_key, lambda: whole_style_stats(run_net, self.config, style, masks, regions, self.config.tile_size)
        )

    def run_tile(self, index: int, steps: int, should_stop: Callable[[], bool] | None = None) -> bool:
        """Optimize one tile for `steps` steps and blend it in; True when `should_stop` ended it early."""
        tile, (h, w) = self.tiles[index], self.x.shape[-2:]
        guidance, factor = crop_guidance(self.guidance, tile, h, w)
        config = self.config.replace(
            content_weight=self.config.content_weight * factor, lbfgs_history=min(self.config.lbfgs_history, steps)
        )
        objective = Objective(self.net, config, self.content[tile.extent], [], [], self.blend, guidance, self.whole)
        run = ScaleRun(objective, self.x[tile.extent], config)
        done, stopped = 0, False
        while done < steps:
            if should_stop is not None and should_stop():
                stopped = True
                break
            run.step()
            done += 1
        if done:
            run.check_finite()  # a non-finite or diverging step is undone: the tile keeps its last good picture
            run.settle()
            self.terms = run.terms
            self.message = run.message or self.message
        weight = blend_weight(tile, self.x.device)
        with torch.no_grad():
            region = self.x[tile.extent]
            region.mul_(1 - weight).add_(run.result().to(region.dtype) * weight)
        return stopped

    def result(self) -> torch.Tensor:
        return self.x

    def read_losses(self) -> dict[str, float]:
        """The last tile's loss terms."""
        return read_terms(self.terms)


def work_megapixels(config: StyleConfig, shape_hw: tuple[int, int]) -> float:
    """Megapixel-steps a run computes: each scale's steps times the pixels it optimizes (tiles with their
    overlap), plus a third of a step per pixel for each forward pass without a gradient (the photo's and the style's
    targets per scale, and the last move's check at its end; the whole picture once more on tiled scales). Times
    seconds per megapixel-step: the run's time."""
    sizes = scale_sizes(config)
    total = 0.0
    for side, steps in zip(sizes, steps_per_scale(config, len(sizes))):
        h, w = picture_pixels(shape_hw, side)
        pixels = h * w
        if side > tile_above(config):
            extents = sum((t.y1 - t.y0) * (t.x1 - t.x0) for t in tile_grid(h, w, config.tile_size, config.tile_overlap))
            # steps, each tile's content targets and last-move check, the whole-picture passes
            total += steps * extents + 2 * extents / 3 + 2 * pixels / 3
        else:
            total += steps * pixels + pixels
    return total / 1e6


def work_steps(config: StyleConfig, shape_hw: tuple[int, int]) -> int:
    """Optimizer steps a run takes, whatever their size: a tiled scale's steps once per tile."""
    sizes = scale_sizes(config)
    total = 0
    for side, steps in zip(sizes, steps_per_scale(config, len(sizes))):
        if side > tile_above(config):
            h, w = picture_pixels(shape_hw, side)
            steps *= len(tile_grid(h, w, config.tile_size, config.tile_overlap))
        total += steps
    return total
