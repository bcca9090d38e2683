"""The memory guard's arithmetic: what a run at a given size needs at its peak, what the machine can give, and the
plan that fits (untiled, tiled, or a smaller size).

Why: past about 1000 px an untiled run's activations and L-BFGS history outgrow a laptop's RAM, and on a CPU the
kernel's out-of-memory killer ends the process with no message (a 3000 px request reached 24 GB). So the facade
asks this module before the run, never after.

The estimate is the network's stored activations per pixel (from its layers, widths and dtype), times a factor
measured on the real VGG19 (`benchmarks/print.py` checks it against measured peaks), plus the optimizer's history,
portrait mode's masks and the full-size pictures a tiled run keeps.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .backbone import VGGFeatures
from .config import StyleConfig, scale_sizes, steps_per_scale, tile_above

GB = 1024**3
FREE_SHARE = 0.5  # default budget: half of what is free now (the machine is shared; the estimate is +-15 %)
CAP_SHARE = 0.9  # an explicit cap is still held under this share of what is free
MIN_TILE = 192
# Measured (benchmarks/print.py, VGG19 to relu5_1, bf16 on a CPU): a step's peak is this many times the stored
# activations counted below (the rest is gradients in flight and the allocator's slack).
ACTIVATION_FACTOR = 1.6
FIXED_BYTES = 320 * 1024**2  # per step, whatever the size: oneDNN scratch, allocator caches (230-300 MB measured)
GUIDED_BYTES_PER_PIXEL = 600  # portrait mode's packed masks and gathered region pixels, per step pixel
PORTRAIT_PREP_BYTES_PER_PIXEL = 400  # portrait mode's float64 pictures and masks at the output size
FULL_BYTES_PER_PIXEL = 120  # a tiled scale's whole picture, photo, frame and conversions, per output pixel (measured)
OPTIMIZER_BUFFERS = 9  # L-BFGS: picture, gradient, previous gradient, move, last good picture, the step's starting
# picture, ... (3 floats each)


@dataclass(frozen=True)
class Costs:
    """Bytes per pixel of one optimizer step at a scale, for one network and precision."""

    activations: float  # stored activations and their gradients, per pixel of the picture optimized
    guided: bool

    def step_bytes(self, pixels: int, steps: int, config: StyleConfig) -> float:
        history = min(config.lbfgs_history, max(1, steps)) if config.optimizer == "lbfgs" else 2
        per_pixel = self.activations + (2 * history + OPTIMIZER_BUFFERS) * 3 * 4
        if self.guided:
            per_pixel += GUIDED_BYTES_PER_PIXEL
        return FIXED_BYTES + pixels * per_pixel


def network_costs(net: VGGFeatures, dtype_bytes: int, guided: bool = False) -> Costs:
    """Stored activations per input pixel of `net`: conv outputs (in `dtype_bytes`), max-pool indices (int64),
    float32 copies of the style and content layers, times ACTIVATION_FACTOR."""
    total, scale, channels = 3 * 4 * 4.0, 1.0, 3  # the input, normalised, clamped and its gradient
    for name, module in zip(net.names, net.features):
        if name.startswith("conv"):
            channels = module.out_channels
            total += channels * scale * dtype_bytes
        elif name.startswith("pool"):
            scale /= 4
            total += channels * scale * (dtype_bytes + 8)
        if name in net.layers and dtype_bytes != 4:
            total += channels * scale * 4  # the statistics' float32 copy
    return Costs(total * ACTIVATION_FACTOR, guided)


def picture_pixels(shape_hw: tuple[int, int], side: int) -> tuple[int, int]:
    """(height, width) of a picture of shape `shape_hw` resized to long side `side` (as images.resize_long_side)."""
    h, w = shape_hw
    k = side / max(h, w)
    return max(1, round(h * k)), max(1, round(w * k))


def tile_extent(tile_size: int, overlap: int, hw: tuple[int, int], even: bool = True) -> int:
    """Pixels of the largest tile (its core plus the overlap on both sides), within a picture of `hw`. Cores split
    each side evenly (`even`); a portrait's face tile is a full `tile_size`."""
    m = margin(overlap)

    def side(length: int) -> int:
        core = math.ceil(length / math.ceil(length / tile_size)) if even else tile_size
        return min(length, core + 2 * m)

    return side(hw[0]) * side(hw[1])


def margin(overlap: int) -> int:
    """The overlap rounded up to a multiple of 16, so tiles' features align with the whole picture's."""
    return 16 * math.ceil(overlap / 16)


def estimate_bytes(config: StyleConfig, shape_hw: tuple[int, int], costs: Costs, portrait: bool = False) -> int:
    """The run's working memory at its peak (on top of what the process holds before it), over every scale."""
    sizes = scale_sizes(config)
    peak = 0.0
    for side, steps in zip(sizes, steps_per_scale(config, len(sizes))):
        hw = picture_pixels(shape_hw, side)
        pixels = hw[0] * hw[1]
        if side > tile_above(config):
            extent = tile_extent(config.tile_size, config.tile_overlap, hw, even=not portrait)
            need = costs.step_bytes(extent, steps, config)
            need += pixels * FULL_BYTES_PER_PIXEL
        else:
            need = costs.step_bytes(pixels, steps, config)
        peak = max(peak, need)
    if portrait:
        hw = picture_pixels(shape_hw, config.size)
        peak = max(peak, hw[0] * hw[1] * PORTRAIT_PREP_BYTES_PER_PIXEL)
    return int(peak)


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


CGROUP_FILES = (  # (limit, usage): cgroup v2, then v1
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
)


def cgroup_free_bytes() -> int | None:
    """What this process's cgroup still allows (limit - usage); None: no limit."""
    for limit_path, usage_path in CGROUP_FILES:
        limit, usage = _read_int(limit_path), _read_int(usage_path)
        if limit is not None and usage is not None and limit < 2**60:
            return max(0, limit - usage)
    return None


def meminfo_available_bytes() -> int | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    match = re.search(r"^MemAvailable:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) * 1024 if match else None


def process_rss_bytes() -> int:
    """This process's resident memory now (Linux; 0 where /proc is missing)."""
    try:
        for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def available_bytes(device: torch.device) -> int | None:
    """Memory the machine can give a run now: the GPU's free memory (plus what torch holds unused), or the RAM
    available (MemAvailable, within the cgroup's limit). None: unknown (no guard)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if device.type != "cpu":
        return None
    known = [b for b in (meminfo_available_bytes(), cgroup_free_bytes()) if b is not None]
    return min(known) if known else None


def held_bytes(device: torch.device) -> int:
    """What the process holds before the run (counted against an explicit cap)."""
    return torch.cuda.memory_allocated(device) if device.type == "cuda" else process_rss_bytes()


def budget_bytes(config: StyleConfig, device: torch.device) -> int | None:
    """Working memory the run may use: `max_memory_gb` minus what the process holds (kept under CAP_SHARE of what
    is free), or FREE_SHARE of what is free. None: unknown and uncapped."""
    free = available_bytes(device)
    if config.max_memory_gb is not None:
        cap = int(config.max_memory_gb * GB) - held_bytes(device)
        return max(0, min(cap, int(CAP_SHARE * free)) if free is not None else cap)
    return None if free is None else int(FREE_SHARE * free)


@dataclass(frozen=True)
class MemoryPlan:
    """The guard's decision: the config to run (its size, tiling and tile size) and why."""

    config: StyleConfig
    estimate: int  # bytes of working memory at the peak
    budget: int | None
    note: str = ""  # one line when the size had to shrink
    held: int = 0  # bytes the process held before the run

    def describe(self) -> str:
        cfg = self.config
        budget = f"{self.budget / GB:.1f} GB allowed" if self.budget is not None else "no limit known"
        tiled = [s for s in scale_sizes(cfg) if s > tile_above(cfg)]
        how = f"tiled above {tile_above(cfg)} px in {cfg.tile_size} px tiles" if tiled else "untiled"
        return (
            f"memory: about {self.estimate / GB:.2f} GB for the run ({budget}) on top of "
            f"{self.held / GB:.2f} GB held; {how}"
        )


def _candidates(config: StyleConfig) -> list[StyleConfig]:
    """Ways to run `config`, cheapest in time first: smaller tiles at the tiled scales, then tiling more scales."""
    above = tile_above(config)
    lower = [s for s in reversed(scale_sizes(config)) if s < above]
    tiles = []
    t = config.tile_size
    while t >= MIN_TILE:
        tiles.append(t)
        t //= 2
    return [config.replace(tile_above=a, tile_size=t) for a in [above, *lower] for t in tiles or [config.tile_size]]


def plan_memory(
    config: StyleConfig, shape_hw: tuple[int, int], costs: Costs, budget: int | None, portrait: bool = False
) -> MemoryPlan:
    """The first way to run `config` whose estimate fits in `budget`; when none does at the requested size, the
    largest size (3/4 at a time) that fits, with a note that says why."""
    if budget is None:
        return MemoryPlan(config, estimate_bytes(config, shape_hw, costs, portrait), None)
    size = config.size
    while True:
        sized = config.replace(size=size, start_size=min(config.start_size, size))
        for candidate in _candidates(sized):
            estimate = estimate_bytes(candidate, shape_hw, costs, portrait)
            if estimate <= budget:
                note = ""
                if size < config.size:
                    need = estimate_bytes(_candidates(config)[-1], shape_hw, costs, portrait)
                    note = (
                        f"not enough memory for {config.size} px (about {need / GB:.1f} GB even tiled, "
                        f"{budget / GB:.1f} GB allowed), so it was painted at {size} px"
                    )
                return MemoryPlan(candidate, estimate, budget, note)
        if size <= 64:
            return MemoryPlan(candidate, estimate, budget, f"too little memory even at {size} px; trying anyway")
        size = max(64, int(size * 0.75))
