"""`stylize()`: the coarse-to-fine optimization loop, as a generator of frames.

The generator is the one seam between engine and UI: callers iterate frames and stop a run by closing it
(or by abandoning it); tensors are released in `finally`.
"""

from __future__ import annotations

import gc
import hashlib
import math
import time
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image

from . import losses
from .backbone import VGGFeatures, low_precision_copy
from .color import match_colors, preserve_colors
from .config import StyleConfig, scale_sizes, steps_per_scale
from .devices import describe, pick_device
from .graphs import StepGraph
from .images import ImageSource, load_image, resize_long_side
from .lbfgs import LBFGS
from .weights import load_weights


class StylizeError(RuntimeError):
    """A run that cannot go on; the message is meant for the user."""


@dataclass
class Frame:
    """One look at the picture being painted."""

    image: Image.Image
    step: int
    total_steps: int
    scale: int  # long side of the current scale, px
    scale_index: int
    num_scales: int
    losses: dict[str, float]
    elapsed: float
    is_final: bool
    event: str = "progress"  # "progress", "scale" (a scale finished) or "final"
    message: str = ""  # set when the run had to recover from a fault, or fell back to plain mode
    identity: float | None = None  # portrait mode, final frame: face embedding distance to the photo


@dataclass
class Guidance:
    """Optional spatial control (portrait mode): soft region masks and a content-weight map.

    Masks are (H, W) tensors in [0, 1] at any resolution; they are resized per layer. Region r of the
    content is matched to region r of each style picture.
    """

    content_masks: dict[str, torch.Tensor] = field(default_factory=dict)
    style_masks: list[dict[str, torch.Tensor]] = field(default_factory=list)
    region_weights: dict[str, float] = field(default_factory=dict)
    content_weight_map: torch.Tensor | None = None


@dataclass
class Backbone:
    """A feature network plus the line that says where its weights came from."""

    net: VGGFeatures
    report: str


_backbones: OrderedDict[tuple, Backbone] = OrderedDict()
_style_stats: OrderedDict[tuple, dict] = OrderedDict()
STYLE_CACHE_SIZE = 32


def get_backbone(config: StyleConfig, device: torch.device) -> Backbone:
    """The truncated VGG for this config's layers, on `device`, cached in the process."""
    layers = tuple(dict.fromkeys((*config.content_layers, *config.style_layers)))
    key = (config.backbone, config.weights, config.weights_source, layers, config.pooling, str(device))
    if key not in _backbones:
        w = load_weights(config.backbone, config.weights, config.weights_source)
        net = VGGFeatures(w.arch, list(layers), w.state_dict, w.input_format, config.pooling).to(device)
        _backbones[key] = Backbone(net, w.report)
        while len(_backbones) > 4:
            _backbones.popitem(last=False)
    _backbones.move_to_end(key)
    return _backbones[key]


def use_autocast(device: torch.device) -> bool:
    """bf16 autocast where it pays: CUDA, and CPUs with AMX bf16 units (oneDNN uses them)."""
    if device.type == "cuda":
        return True
    return device.type == "cpu" and _cpu_has_amx()


@lru_cache(maxsize=1)
def _cpu_has_amx() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return "amx_bf16" in f.read()
    except OSError:
        return False


_twins: weakref.WeakKeyDictionary[VGGFeatures, VGGFeatures] = weakref.WeakKeyDictionary()


def _low_precision(net: VGGFeatures) -> VGGFeatures:
    """The network's bf16 twin, made once per network (bf16 convolutions, statistics still in fp32)."""
    if net not in _twins:
        _twins[net] = low_precision_copy(net)
    return _twins[net]


def to_tensor(img: Image.Image, device: torch.device) -> torch.Tensor:
    return TF.to_tensor(img).unsqueeze(0).to(device)


def to_pil(x: torch.Tensor) -> Image.Image:
    return TF.to_pil_image(x.detach().squeeze(0).float().clamp(0, 1).cpu())


def _layer_weights(config: StyleConfig) -> list[float]:
    raw = config.style_layer_weights or [config.layer_weight_exp**i for i in range(len(config.style_layers))]
    total = sum(raw) or 1.0
    return [w / total for w in raw]


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
    ) -> None:
        self.net, self.config, self.guidance = net, config, guidance
        self.run_net = _low_precision(net) if config.autocast and use_autocast(content.device) else net
        self.layer_weights = dict(zip(config.style_layers, _layer_weights(config)))
        with torch.no_grad():
            feats = self.run_net(content)
        self.content_targets = {n: feats[n].float() for n in config.content_layers}
        # Masks resized once per scale: each region's pixels at each style layer's resolution, and the
        # content-weight map at each content layer's.
        g = guidance
        self.packed = (
            {
                layer: losses.pack_masks(
                    {r: m.to(content.device) for r, m in g.content_masks.items()}, *feats[layer].shape[-2:]
                )
                for layer in config.style_layers
            }
            if g and g.content_masks
            else {}
        )
        self.weight_maps = (
            {
                n: losses.normalized_weight_map(g.content_weight_map.to(content.device), feats[n].shape)
                for n in config.content_layers
            }
            if g is not None and g.content_weight_map is not None
            else {}
        )
        self.content_norm = {
            n: (1 / max(float(t.pow(2).mean()), 1e-8) if config.normalize_losses else 1.0)
            for n, t in self.content_targets.items()
        }
        self.regions = self._regions()
        stats = [self._style_stats(s, key, i) for i, (s, key) in enumerate(zip(styles, style_keys))]
        self.style_targets = self._blend(stats, blend)
        self._plan(feats)

    def _plan(self, feats: dict[str, torch.Tensor]) -> None:
        """Everything about a step's loss that is fixed for the scale, so a step runs few small kernels.

        Each loss term is computed "raw" (its constant factors left out) and one (4, terms) matrix `mix` turns the
        stacked raw terms into content, style, tv and total: the weights, normalisers and the Gram formula's
        constants cost one matrix-vector product per step instead of a multiplication per term."""
        cfg, g = self.config, self.guidance
        rows: list[tuple[float, float, float]] = []  # each raw term's share of (content, style, tv)
        for n in self.content_targets:
            rows.append((self.content_norm[n], 0.0, 0.0))
        region_total = sum(g.region_weights.get(r, 1.0) for r in self.regions) if self.regions != [None] else 1.0
        # per style layer: (region, per-pixel factor or None, GramMatch or Gaussian)
        self.style_plan: dict[str, list[tuple[str | None, torch.Tensor | None, object]]] = {}
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
                    plan.append((region, factor, match))
                    share *= match.factor
                else:
                    plan.append((region, None, target))
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

    def _style_stats(self, style: torch.Tensor, key: str, index: int) -> dict:
        """Per-layer, per-region statistics of one style picture, cached across runs in the process."""
        cache_key = (
            id(self.net),
            key,
            tuple(style.shape),
            self.config.style_loss,
            tuple(self.config.style_layers),
            tuple(self.regions),
            self.guidance is not None,
        )
        if cache_key in _style_stats:
            _style_stats.move_to_end(cache_key)
            return _style_stats[cache_key]
        with torch.no_grad():
            feats = self.run_net(style)
        out = {}
        for layer in self.config.style_layers:
            f = feats[layer].float()
            for region in self.regions:
                mask = self.guidance.style_masks[index].get(region) if region else None
                mask = mask.to(style.device) if mask is not None else None
                if self._gram:
                    out[layer, region] = losses.gram(f, mask)
                else:
                    out[layer, region] = losses.mean_cov(f, mask)
        _style_stats[cache_key] = out
        while len(_style_stats) > STYLE_CACHE_SIZE:
            _style_stats.popitem(last=False)
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
                mean = sum(wi * s[key][0] for wi, s in zip(w, stats))
                second = sum(wi * (s[key][1] + torch.outer(s[key][0], s[key][0])) for wi, s in zip(w, stats))
                cov = second - torch.outer(mean, mean)
                root = losses._sqrtm_psd(cov.double()).float()
                scale = (mean.pow(2).sum() + torch.diagonal(cov).sum()) / mean.shape[0]
                norm = 1 / max(float(scale), 1e-12) if self.config.normalize_losses else 1.0
                targets[key] = (losses.Gaussian(mean, cov, root), norm)
        return targets

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total loss and its parts (content, style, tv, total) for a picture in [0, 1]."""
        parts = self.parts(image)
        return parts[3], dict(zip(LOSS_TERMS, parts.unbind()))

    def parts(self, image: torch.Tensor) -> torch.Tensor:
        """(content, style, tv, total) as one tensor."""
        return self.mix @ torch.stack(self._raw_terms(image))

    def _raw_terms(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The loss terms without their constant factors, in the order of `mix`'s columns."""
        feats = self.run_net(image)
        raw = []
        for n, target in self.content_targets.items():
            raw.append(losses.content_loss(feats[n], target, self.weight_maps.get(n)))  # in fp32
        for layer, plan in self.style_plan.items():
            f = feats[layer]
            if self.packed:
                pixels = losses.gather_regions(f, self.packed[layer])
            else:
                pixels = {None: (f.float().reshape(f.shape[1], -1), None)}
            for region, factor, target in plan:
                pix, weight = pixels[region]
                if self._gram:
                    raw.append(target.raw(pix if factor is None else pix * factor))
                else:
                    raw.append(losses.w2_distance(*losses.weighted_mean_cov(pix, weight), target))
        raw.append(losses.tv_loss(image))
        return raw


LOSS_TERMS = ("content", "style", "tv", "total")


def warm_up(config: StyleConfig) -> str:
    """Load (and cache) the configured backbone now; returns the weights report and the device."""
    device = pick_device(config.device)
    return f"{get_backbone(config, device).report} | device: {describe(device)}"


def _initial_image(config: StyleConfig, content: torch.Tensor) -> torch.Tensor:
    gen = torch.Generator().manual_seed(config.seed if config.seed is not None else int(time.time_ns() % 2**31))
    noise = torch.rand(content.shape, generator=gen).to(content.device)
    if config.init == "content":
        return content.clone()
    if config.init == "noise":
        return noise
    return (1 - config.init_noise) * content + config.init_noise * noise


def _digest(img: Image.Image) -> str:
    return hashlib.sha1(img.tobytes() + repr(img.size).encode()).hexdigest()


def stylize(
    content: ImageSource,
    styles: ImageSource | Sequence[ImageSource],
    config: StyleConfig | None = None,
    backbone: VGGFeatures | None = None,
    guidance: Guidance | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[Frame]:
    """Paint `content` in the style of `styles`, yielding frames as it goes; the last has is_final=True.

    `backbone` overrides the configured network (tests pass a tiny random one). Close the generator to
    stop; nothing keeps running after that. `should_stop` is polled every step: when it returns True the
    run ends at once with a final frame of the current picture (a UI's Stop button keeps its result).
    When memory runs out (a big size on a small GPU), the run starts again at 3/4 of the size, with a
    warning and the reason in each frame's `message`.
    """
    config = (config or StyleConfig()).validate()
    style_list = list(styles) if isinstance(styles, (list, tuple)) else [styles]
    if config.portrait and guidance is None:
        from .portrait.pipeline import stylize_portrait  # faces -> guidance, then back here

        yield from stylize_portrait(content, style_list, config, backbone=backbone, should_stop=should_stop)
        return
    notice = ""
    while True:
        run = _stylize_once(content, style_list, config, backbone, guidance, should_stop)
        try:
            for frame in run:
                if notice:
                    frame.message = "; ".join(m for m in (notice, frame.message) if m)
                yield frame
            return
        except Exception as exc:
            if not _is_out_of_memory(exc):
                raise
        # Out of memory: the exception (and its traceback's activations) is gone here, so memory can be freed.
        del run
        _free_device_memory()
        smaller = _smaller_size(config.size)
        if smaller is None:
            raise StylizeError(f"out of memory even at {config.size} px; try a smaller size or the CPU")
        notice = f"out of memory at {config.size} px, so it was painted at {smaller} px"
        warnings.warn(notice, RuntimeWarning, stacklevel=2)
        config = config.replace(size=smaller, start_size=min(config.start_size, smaller))


def _graph_mode(config: StyleConfig, device: torch.device) -> str | None:
    """"cuda" where the step can be recorded as a CUDA graph: asked for, on CUDA, with the Gram loss (W2's
    eigenvalue solver reads its status back to the host, which a recording cannot contain)."""
    return "cuda" if config.cuda_graphs and device.type == "cuda" and config.style_loss == "gram" else None


MIN_RETRY_SIZE = 128


def _is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or the CPU allocator's failure (a plain RuntimeError)."""
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)
    )


def _smaller_size(size: int) -> int | None:
    """The next size to try after running out of memory: three quarters of the pixels' long side."""
    if size <= MIN_RETRY_SIZE:
        return None
    return max(MIN_RETRY_SIZE, int(size * 0.75))


def _free_device_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _stylize_once(
    content: ImageSource,
    style_list: list[ImageSource],
    config: StyleConfig,
    backbone: VGGFeatures | None,
    guidance: Guidance | None,
    should_stop: Callable[[], bool] | None,
) -> Iterator[Frame]:
    """One attempt at the configured size (`stylize` retries smaller when memory runs out)."""
    if not style_list:
        raise StylizeError("at least one style picture is needed")
    blend = list(config.style_blend) if config.style_blend is not None else [1.0] * len(style_list)
    if len(blend) != len(style_list):
        raise StylizeError(f"{len(style_list)} style pictures but {len(blend)} blend weights")
    content_img = load_image(content)
    style_imgs = [load_image(s) for s in style_list]

    start = time.perf_counter()
    device = pick_device(config.device) if backbone is None else next(backbone.parameters()).device
    if config.seed is not None:
        torch.manual_seed(config.seed)
    net = backbone if backbone is not None else get_backbone(config, device).net
    graph_mode = _graph_mode(config, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # a handful of shapes per run, each autotuned once per process
    missing = [n for n in (*config.content_layers, *config.style_layers) if n not in net.layers]
    if missing:
        raise StylizeError(f"the network was built without the layers {missing}")
    if config.match_style_colors:
        ref = to_tensor(resize_long_side(content_img, 256), torch.device("cpu"))
        style_imgs = [to_pil(match_colors(to_tensor(s, torch.device("cpu")), ref)) for s in style_imgs]
    keys = [_digest(s) for s in style_imgs]

    sizes = scale_sizes(config)
    counts = steps_per_scale(config, len(sizes))
    total_steps = sum(counts)
    step = 0
    x: torch.Tensor | None = None
    objective = None
    try:
        for si, (side, n_steps) in enumerate(zip(sizes, counts)):
            content_t = to_tensor(resize_long_side(content_img, side), device)
            style_side = max(16, round(side * config.style_scale))
            style_ts = [to_tensor(resize_long_side(s, style_side), device) for s in style_imgs]
            if x is None:
                x = _initial_image(config, content_t)
            else:
                x = F.interpolate(x, size=content_t.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)
            objective = Objective(net, config, content_t, style_ts, keys, blend, guidance)
            run = _ScaleRun(objective, x, config, graph_mode)
            last = si == len(sizes) - 1
            done_here = 0
            while done_here < n_steps:
                if should_stop is not None and should_stop():
                    run.message = "stopped early; this is the picture so far"
                    run.check_finite()
                    x = run.result().detach()
                    yield _frame(run, content_t, config, step, total_steps, side, si, len(sizes), start, "final")
                    return
                run.step()
                done_here += 1
                step += 1
                at_checkpoint = step % config.checkpoint_every == 0
                if at_checkpoint or done_here == n_steps:
                    run.check_finite()
                    if run.failed:
                        break
                    if run.done_scale or (config.early_stop and run.converged(config.early_stop)):
                        step += n_steps - done_here
                        done_here = n_steps
                if at_checkpoint and done_here < n_steps:
                    yield _frame(run, content_t, config, step, total_steps, side, si, len(sizes), start, "progress")
            x = run.result().detach()
            final = last or run.failed
            yield _frame(
                run, content_t, config, step, total_steps, side, si, len(sizes), start, "final" if final else "scale"
            )
            if run.failed:
                return
    finally:
        del x, objective
        if device.type == "cuda":
            torch.cuda.empty_cache()


def _frame(
    run: _ScaleRun,
    content_t: torch.Tensor,
    config: StyleConfig,
    step: int,
    total: int,
    side: int,
    si: int,
    n_scales: int,
    start: float,
    event: str,
) -> Frame:
    img = run.result()
    if config.preserve_colors:
        img = preserve_colors(img, content_t)
    return Frame(
        to_pil(img),
        step,
        total,
        side,
        si,
        n_scales,
        run.read_losses(),
        time.perf_counter() - start,
        event == "final",
        event,
        run.message,
    )


class _ScaleRun:
    """The optimizer state for one scale, with rollback on non-finite losses."""

    MAX_RECOVERIES = 3
    BLOW_UP = 3.0

    GRAPH_WARM_UP = 2  # eager steps per scale before recording a CUDA graph

    def __init__(
        self, objective: Objective, x: torch.Tensor, config: StyleConfig, graph_mode: str | None = None
    ) -> None:
        self.objective, self.config = objective, config
        self.graph_mode = graph_mode  # "cuda", "simulate" (tests) or None
        self.graph: StepGraph | None = None
        self.warmup_left = self.GRAPH_WARM_UP
        self.side_stream: torch.cuda.Stream | None = None
        self.x = x.detach().clone().requires_grad_(True)
        self.good = self.x.detach().clone()
        self.lr_scale = 1.0
        self.ema: torch.Tensor | None = None
        self.ema_count = 0
        self.terms: dict[str, torch.Tensor] = {}
        self.history: list[float] = []
        self.failed = False
        self.done_scale = False
        self.recoveries = 0
        self.diverged = 0
        self.first_total: torch.Tensor | None = None  # the loss of the scale's starting picture
        self.message = ""
        self._make_optimizer()

    def _closure(self) -> torch.Tensor:
        if self.graph is not None:
            parts = self.graph.replay()  # the same buffer every step: views of it always show the latest
            self.terms = dict(zip(LOSS_TERMS, parts.unbind()))
        else:
            self.opt.zero_grad(set_to_none=True)
            # The loss sees the picture as it will be saved (clamped), so L-BFGS cannot profit from pixels out of
            # range; with Adam the iterate itself is clamped after each step, so this changes nothing there.
            total, terms = self.objective(self.x.clamp(0, 1))
            total.backward()
            self.terms = {k: v.detach() for k, v in terms.items()}
        if self.first_total is None:
            self.first_total = self.terms["total"].clone()
        return self.terms["total"]

    def step(self) -> None:
        if self.graph_mode is not None and self.graph is None:
            if self.warmup_left == 0:
                self._record()
            else:
                self.warmup_left -= 1
        with self._warm_up_stream():
            self._step()

    def _record(self) -> None:
        """Record this scale's pass as a CUDA graph (after warm-up steps: cudnn's autotuning, lazy handles)."""
        try:
            self.graph = StepGraph(
                lambda x: self.objective.parts(x.clamp(0, 1)), self.x, simulate=self.graph_mode == "simulate"
            )
        except Exception as exc:  # an operation that cannot be recorded: go on as before, and say so once
            warnings.warn(f"CUDA graph recording failed ({exc}); running without graphs", RuntimeWarning, stacklevel=3)
            self.graph_mode, self.graph = None, None
            self.x.grad = None

    @contextmanager
    def _warm_up_stream(self) -> Iterator[None]:
        """Warm-up steps before recording run on a side stream, as CUDA graphs require."""
        if self.graph_mode != "cuda" or self.graph is not None:
            yield
            return
        if self.side_stream is None:
            self.side_stream = torch.cuda.Stream()
        side = self.side_stream
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            yield
        torch.cuda.current_stream().wait_stream(side)

    def _make_optimizer(self) -> None:
        if self.config.optimizer == "lbfgs":
            self.opt: LBFGS | torch.optim.Optimizer = LBFGS(
                self.x, lr=self.lr_scale, history_size=self.config.lbfgs_history
            )
        else:
            self.opt = torch.optim.Adam([self.x], lr=self.config.lr * self.lr_scale, betas=(0.9, 0.99))

    def _step(self) -> None:
        if self.config.optimizer == "lbfgs":
            self.opt.step(self._closure)
        else:
            self._closure()
            self.opt.step()
        with torch.no_grad():
            if self.config.optimizer == "adam":
                self.x.clamp_(0, 1)  # L-BFGS is left unclamped: clamping corrupts its curvature pairs
            if self.config.optimizer == "adam" and self.config.ema_decay > 0:
                self.ema_count += 1
                if self.ema is None:
                    self.ema = self.x.detach().clone()
                else:
                    # Bias-corrected average: early iterates fade out as in crowsonkb's EMA.
                    d = min(self.config.ema_decay, (1 + self.ema_count) / (10 + self.ema_count))
                    self.ema.mul_(d).add_(self.x.detach(), alpha=1 - d)

    def check_finite(self) -> None:
        """At a checkpoint: keep the iterate if finite and not diverging, else roll back and shrink the step size.

        Diverging: the loss above BLOW_UP times the best seen at this scale (from its starting picture on). L-BFGS
        without a line search can take a wild step when its curvature pairs go stale (pixels pushed past the clamp
        have no gradient); left alone such a step wrecks the picture, so it is undone like a NaN."""
        total = self.terms.get("total")
        finite = total is not None and bool(torch.isfinite(total)) and bool(torch.isfinite(self.x).all())
        first = float(self.first_total) if self.first_total is not None else math.inf
        best = min([*self.history, first if math.isfinite(first) else math.inf])  # a NaN start: the NaN path's job
        if finite and float(total) <= self.BLOW_UP * best:
            self.history.append(float(total))
            self.good = self.result().detach().clone()
            return
        with torch.no_grad():
            self.x.copy_(self.good)
        self.ema, self.ema_count = None, 0
        if finite:  # diverged: restart from the last good picture with a fresh, shorter-stepping optimizer
            self.diverged += 1
            self.lr_scale *= 0.5
            self._make_optimizer()
            self.done_scale = self.diverged > self.MAX_RECOVERIES  # give up on this scale, keep its last good picture
            return
        self.recoveries += 1
        if self.recoveries > self.MAX_RECOVERIES:
            self.failed = True
            self.message = "the optimization kept producing invalid values; stopped at the last good picture"
            return
        self.lr_scale *= 0.5
        self._make_optimizer()
        self.message = f"recovered from an invalid step (step size now x{self.lr_scale:g})"

    def converged(self, tolerance: float) -> bool:
        h = self.history
        if len(h) >= 2 and h[-2] > 0 and (h[-2] - h[-1]) / h[-2] < tolerance:
            self.done_scale = True
        return self.done_scale

    def result(self) -> torch.Tensor:
        if self.failed or not torch.isfinite(self.x).all():
            return self.good
        return self.ema if self.ema is not None else self.x.detach().clamp(0, 1)

    def read_losses(self) -> dict[str, float]:
        if not self.terms:
            return {}
        values = torch.stack(list(self.terms.values())).tolist()  # one read-back from the device, not one per term
        return {k: v for k, v in zip(self.terms, values) if math.isfinite(v)}
