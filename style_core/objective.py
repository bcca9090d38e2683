"""The loss for one scale: content and style targets fixed at construction, a picture in, loss terms out.

Each term is computed "raw" (its constant factors left out) and one (4, terms) matrix `mix`, built once per
scale, turns the stacked raw terms into content, style, tv and total: the weights, normalisers and the Gram
formula's constants cost one matrix-vector product per step instead of a multiplication per term.

Style statistics are cached across runs in the process (`STYLE_STATS`), keyed by everything they depend on:
the network (a serial number that is never reused, not its `id`), its dtype and device, the style picture's
digest and size, the loss, the layers, the regions and the style masks' contents.
"""

from __future__ import annotations

import hashlib
import itertools
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from . import losses
from .backbone import VGGFeatures
from .config import StyleConfig
from .frames import LOSS_TERMS, Guidance
from .networks import run_network
from .stats import weighted_mean_cov


class StyleStatsCache:
    """A bounded LRU map from a style picture's key to its per-layer, per-region statistics."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._entries: OrderedDict[tuple, dict] = OrderedDict()

    def get(self, key: tuple, compute: Callable[[], dict]) -> dict:
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        value = self._entries[key] = compute()
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


STYLE_STATS = StyleStatsCache()
_serials: weakref.WeakKeyDictionary[VGGFeatures, int] = weakref.WeakKeyDictionary()
_next_serial = itertools.count()


def clear_style_cache() -> None:
    """Forget every cached style statistic (benchmarks that time a cold start call this)."""
    STYLE_STATS.clear()


def network_serial(net: VGGFeatures) -> int:
    """A number for this network object that no other network in the process will ever get."""
    if net not in _serials:
        _serials[net] = next(_next_serial)
    return _serials[net]


def tensor_digest(t: torch.Tensor) -> str:
    data = t.detach().float().cpu().contiguous()
    return hashlib.sha1(data.numpy().tobytes() + repr(tuple(data.shape)).encode()).hexdigest()


def style_stats_key(
    run_net: VGGFeatures,
    config: StyleConfig,
    key: str,
    style: torch.Tensor,
    regions: Sequence[str | None],
    masks: dict[str, torch.Tensor],
) -> tuple:
    """Everything a style picture's statistics depend on: the network (its serial, dtype and device), the picture
    (digest and size), the loss, the layers, the regions and the masks' contents."""
    weights = next(run_net.features.parameters())
    return (
        network_serial(run_net),
        weights.dtype,
        str(weights.device),
        key,
        tuple(style.shape),
        config.style_loss,
        tuple(config.style_layers),
        tuple(regions),
        tuple((r, tensor_digest(m)) for r, m in masks.items()),
    )


def content_norms(targets: dict[str, torch.Tensor], config: StyleConfig) -> dict[str, float]:
    """Each content term's normaliser: one over its target's mean square (1 when losses are not normalised)."""
    return {
        n: (1 / max(float(t.pow(2).mean()), 1e-8) if config.normalize_losses else 1.0) for n, t in targets.items()
    }


def layer_weights(config: StyleConfig) -> list[float]:
    raw = config.style_layer_weights or [config.layer_weight_exp**i for i in range(len(config.style_layers))]
    total = sum(raw) or 1.0
    return [w / total for w in raw]


@dataclass
class WholeTargets:
    """What a tile's objective takes from the whole picture (tiling.py), so that every tile pulls toward the same
    statistics with the balance of an untiled run: each style picture's statistics, the content normalisers and
    the sum of all regions' weights."""

    style_stats: list[dict]
    content_norm: dict[str, float]
    region_total: float | None = None


class Objective:
    """The loss for one scale: targets fixed at construction, `__call__` maps an image to loss terms."""

    def __init__(
        self,
        net: VGGFeatures,
        config: StyleConfig,
        content: torch.Tensor,
        styles: Sequence[torch.Tensor],
        style_keys: Sequence[str],
        blend: Sequence[float],
        guidance: Guidance | None = None,
        whole: WholeTargets | None = None,
    ) -> None:
        self.net, self.config, self.guidance, self.whole = net, config, guidance, whole
        self.run_net = run_network(net, config, content.device)
        self.layer_weights = dict(zip(config.style_layers, layer_weights(config)))
        with torch.no_grad():
            feats = self.run_net(content)
        self.content_targets = {n: feats[n].float() for n in config.content_layers}
        self.packed, self.weight_maps = self._resized_guidance(feats, content.device)
        self.content_norm = whole.content_norm if whole is not None else content_norms(self.content_targets, config)
        self.regions = self._regions()
        if whole is not None:
            stats = whole.style_stats
        else:
            stats = [self._style_stats(s, key, i) for i, (s, key) in enumerate(zip(styles, style_keys))]
        self.style_targets = self._blend(stats, blend)
        self._plan(feats)

    def _resized_guidance(self, feats: dict[str, torch.Tensor], device: torch.device) -> tuple[dict, dict]:
        """Masks resized once per scale: each region's pixels at each style layer's resolution, and the
        content-weight map at each content layer's."""
        g, cfg = self.guidance, self.config
        packed = {}
        if g and g.content_masks:
            masks = {r: m.to(device) for r, m in g.content_masks.items()}
            packed = {layer: losses.pack_masks(masks, *feats[layer].shape[-2:]) for layer in cfg.style_layers}
        weight_maps = {}
        if g is not None and g.content_weight_map is not None:
            weight_map = g.content_weight_map.to(device)
            weight_maps = {n: losses.normalized_weight_map(weight_map, feats[n].shape) for n in cfg.content_layers}
        return packed, weight_maps

    def _plan(self, feats: dict[str, torch.Tensor]) -> None:
        """Everything about a step's loss that is fixed for the scale, so a step runs few small kernels: the
        per-region Gram matches and the mix matrix."""
        cfg, g = self.config, self.guidance
        rows: list[tuple[float, float, float]] = []  # each raw term's share of (content, style, tv)
        for n in self.content_targets:
            rows.append((self.content_norm[n], 0.0, 0.0))
        region_total = sum(g.region_weights.get(r, 1.0) for r in self.regions) if self.regions != [None] else 1.0
        if self.whole is not None and self.whole.region_total is not None:
            region_total = self.whole.region_total
        # per style layer: its regions' GramTerms (gram) or (region, Gaussian) pairs (w2)
        self.style_plan: dict[str, list] = {}
        for layer in cfg.style_layers:
            h, w = feats[layer].shape[-2:]
            spans = self.packed[layer].spans if self.packed else {None: (0, h * w)}
            plan = []
            for region in self.regions:
                target, norm = self.style_targets[layer, region]
                a, b = spans[region]
                weight = self.packed[layer].weight[a:b] if self.packed else None
                share = self.layer_weights[layer] * (g.region_weights.get(region, 1.0) if region else 1.0)
                share *= norm / region_total
                if self._gram:
                    factor, match = losses.gram_match(target, weight, b - a)
                    plan.append(losses.GramTerm(a, b, factor, match))
                    share *= match.factor
                else:
                    plan.append((region, target))
                rows.append((0.0, share, 0.0))
            self.style_plan[layer] = plan
        rows.append((0.0, 0.0, 1.0))  # total variation
        parts = torch.tensor(rows, dtype=torch.float32).T  # (3, terms)
        total = cfg.content_weight * parts[0] + cfg.style_weight * parts[1] + cfg.tv_weight * parts[2]
        self.mix = torch.cat([parts, total[None]]).to(self.content_targets[cfg.content_layers[0]].device)

    @property
    def _gram(self) -> bool:
        return self.config.style_loss == "gram"

    def _regions(self) -> list[str | None]:
        g = self.guidance
        return list(g.content_masks) if g and g.content_masks else [None]

    def _style_masks(self, index: int) -> dict[str, torch.Tensor]:
        if self.regions == [None]:
            return {}
        return {r: self.guidance.style_masks[index][r] for r in self.regions if r in self.guidance.style_masks[index]}

    def _style_stats(self, style: torch.Tensor, key: str, index: int) -> dict:
        """Per-layer, per-region statistics of one style picture, from the process-wide cache."""
        masks = self._style_masks(index)
        cache_key = style_stats_key(self.run_net, self.config, key, style, self.regions, masks)
        return STYLE_STATS.get(cache_key, lambda: self._compute_style_stats(style, masks))

    def _compute_style_stats(self, style: torch.Tensor, masks: dict[str, torch.Tensor]) -> dict:
        with torch.no_grad():
            feats = self.run_net(style)
        out = {}
        for layer in self.config.style_layers:
            f = feats[layer].float()
            for region in self.regions:
                mask = masks.get(region) if region else None
                mask = mask.to(style.device) if mask is not None else None
                out[layer, region] = losses.gram(f, mask) if self._gram else losses.mean_cov(f, mask)
        return out

    def _blend(self, stats: list[dict], blend: Sequence[float]) -> dict:
        """Mix several style pictures' statistics by blend weight (moments mix, so blends are real mixtures)."""
        total = sum(blend)
        w = [b / total for b in blend]
        targets = {}
        for key in stats[0]:
            if self._gram:
                g = sum(wi * s[key] for wi, s in zip(w, stats))
                norm = 1 / max(float(g.pow(2).mean()), 1e-12) if self.config.normalize_losses else 1.0
                targets[key] = (g, norm)
            else:
                mean, cov = losses.mix_moments([s[key] for s in stats], w)
                scale = (mean.pow(2).sum() + torch.diagonal(cov).sum()) / mean.shape[0]
                norm = 1 / max(float(scale), 1e-12) if self.config.normalize_losses else 1.0
                targets[key] = (losses.Gaussian.fit(mean, cov), norm)
        return targets

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total loss and its parts (content, style, tv, total) for a picture in [0, 1]."""
        parts = self.parts(image)
        return parts[3], dict(zip(LOSS_TERMS, parts.unbind()))

    def parts(self, image: torch.Tensor) -> torch.Tensor:
        """(content, style, tv, total) as one tensor."""
        return self.mix @ torch.cat(self._raw_terms(image))

    def _raw_terms(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The loss terms without their constant factors, as 1-D pieces in the order of `mix`'s columns."""
        feats = self.run_net(image)
        raw = []
        for n, target in self.content_targets.items():
            raw.append(losses.content_loss(feats[n], target, self.weight_maps.get(n)).reshape(1))  # in fp32
        for layer, plan in self.style_plan.items():
            f = feats[layer]
            if self._gram:
                flat = losses.channel_matrix(f, upcast=False)  # gathered in bf16, half the bytes; see _GramTerms
                pixels = losses.select_pixels(flat, self.packed[layer].index) if self.packed else flat
                raw.append(losses.gram_terms(pixels, plan))
                continue
            if self.packed:
                pixels = losses.gather_regions(f, self.packed[layer])
            else:
                pixels = {None: (losses.channel_matrix(f), None)}
            for region, target in plan:
                raw.append(losses.w2_distance(*weighted_mean_cov(*pixels[region]), target).reshape(1))
        raw.append(losses.tv_loss(image).reshape(1))
        return raw
