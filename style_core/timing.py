"""How long a run will take on this machine, said before it starts: the megapixel-steps the schedule computes
(tiling.work_megapixels) times the seconds one megapixel-step takes here, measured once with the real network.

Why measured, not assumed: the same run takes seconds on a GPU and many minutes on two CPU cores, and a CPU's
speed per pixel falls at large sizes (caches), so the measurement is taken at a size where that has set in.
"""

from __future__ import annotations

import time

import torch

from .config import StyleConfig
from .networks import get_backbone
from .objective import Objective
from .scale_run import ScaleRun
from .tiling import work_megapixels

CALIBRATION_SIDE = 512


def seconds_per_megapixel_step(config: StyleConfig, device: torch.device, side: int = CALIBRATION_SIDE) -> float:
    """Time of one optimizer step on a side x side picture, per megapixel (two steps timed after a warm-up)."""
    net = get_backbone(config, device).net
    gen = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, side, side, generator=gen).to(device)
    style = torch.rand(1, 3, side, side, generator=gen).to(device)
    config = config.replace(lbfgs_history=3, portrait=False)
    scale = ScaleRun(Objective(net, config, content, [style], ["calibration"], [1.0]), content, config)
    scale.step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(2):
        scale.step()
    _sync(device)
    return (time.perf_counter() - start) / 2 / (side * side / 1e6)


def estimate_seconds(config: StyleConfig, shape_hw: tuple[int, int], per_megapixel_step: float) -> float:
    """The run's time: its megapixel-steps times the measured seconds per megapixel-step."""
    return work_megapixels(config, shape_hw) * per_megapixel_step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
