"""How long a run will take on this machine, said before it starts: the steps and megapixel-steps the schedule
computes (tiling.work_steps, tiling.work_megapixels) at the price a step has here, measured once with the real
network at two sizes.
A run may be several paintings (portrait mode: the whole picture, then each face from its crop), each priced at
its own size, a guided (region-matched) one at a guided step's measured price.

Why measured, not assumed: the same run takes seconds on a GPU and many minutes on two CPU cores, and a CPU's
speed per pixel falls at large sizes (caches), so the measurement is taken at a size where that has set in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from .config import StyleConfig, scale_sizes, steps_per_scale
from .frames import Guidance
from .networks import get_backbone
from .objective import Objective
from .scale_run import ScaleRun
from .tiling import work_megapixels, work_steps

CALIBRATION_SIDE = 512


@dataclass(frozen=True)
class Painting:
    """One engine run of a larger job: its config (size, steps, schedule), the picture's (height, width) before
    resizing, and whether it is guided (portrait mode's region matching: dearer steps)."""

    config: StyleConfig
    shape_hw: tuple[int, int]
    guided: bool = False


@dataclass(frozen=True)
class StepPrice:
    """What a step costs here: a part every step pays whatever its size (the optimizer's bookkeeping, the region
    statistics' set-up, kernel launches), and a part per megapixel. One number per megapixel-step alone priced the
    small scales of a schedule at a third of what they cost (384 px, balanced: the 64 px scale's steps took 25 ms
    each, 7.6 s per megapixel-step, against 2.4-2.8 s at 512 px)."""

    per_step: float
    per_megapixel_step: float

    def seconds(self, steps: float, megapixel_steps: float) -> float:
        return steps * self.per_step + megapixel_steps * self.per_megapixel_step


@dataclass(frozen=True)
class StepPrices:
    """This machine's prices: a plain step, and a guided one (portrait mode; None: not measured, priced as plain)."""

    plain: StepPrice
    guided: StepPrice | None = None


SMALL_SIDE = 128
# Rounds of timed steps, each size and kind once a round: each keeps its fastest. Contention only ever slows a step,
# so the fastest is the machine's own speed; spreading the steps over a few seconds lets each size find a quiet
# moment. With two steps each, back to back, a face detection running beside the calibration (an upload at
# start-up) once priced a plain step at 0.64 s plus 3.9 s per megapixel, against 0.02 s plus 1.9 s alone.
ROUNDS = 5


def seconds_per_megapixel_step(config: StyleConfig, device: torch.device, side: int = CALIBRATION_SIDE) -> float:
    """Time of one plain optimizer step on a side x side picture, per megapixel (the fastest of ROUNDS after a
    warm-up step): one number, for a run's time at one size (benchmarks/print.py)."""
    run = _calibration_run(config, device, side, None)
    return min(_timed_step(run, device) for _ in range(ROUNDS)) / (side * side / 1e6)


class StepTimer:
    """The fastest step seen at each size and kind, over every measurement so far, and the prices they give.

    Measure again later (when the machine is idle) to correct a measurement that ran beside other work: the
    fastest step only ever gets faster, toward the machine's own speed."""

    def __init__(
        self,
        config: StyleConfig,
        device: torch.device,
        guided_config: StyleConfig | None = None,
        guidance: Guidance | None = None,
    ) -> None:
        self.device = device
        self.kinds = {"plain": (config, None)}
        if guidance is not None:
            self.kinds["guided"] = (guided_config or config, guidance)
        self.best = {(kind, side): float("inf") for kind in self.kinds for side in (SMALL_SIDE, CALIBRATION_SIDE)}

    def measure(self, rounds: int = ROUNDS) -> StepPrices:
        """Time `rounds` steps at each size and kind, interleaved; the prices from the fastest of all so far."""
        runs = {
            (kind, side): _calibration_run(self.kinds[kind][0], self.device, side, self.kinds[kind][1])
            for kind, side in self.best
        }
        for _ in range(rounds):
            for key, run in runs.items():
                self.best[key] = min(self.best[key], _timed_step(run, self.device))
        return self.prices()

    def prices(self) -> StepPrices:
        fitted = {kind: _fit(self.best[(kind, SMALL_SIDE)], self.best[(kind, CALIBRATION_SIDE)]) for kind in self.kinds}
        return StepPrices(fitted["plain"], fitted.get("guided"))


def painting_fraction(config: StyleConfig, step: int) -> float:
    """The share of one painting's work done after `step` steps: each scale's steps weighted by its pixels."""
    sizes = scale_sizes(config)
    counts = steps_per_scale(config, len(sizes))
    costs = [n * s * s for n, s in zip(counts, sizes)]
    done, left = 0.0, float(step)
    for n, cost in zip(counts, costs):
        take = min(n, left)
        done += cost * take / n if n else 0.0
        left -= take
    return min(1.0, done / max(sum(costs), 1e-9))


class RunProgress:
    """How far a run is over all of its paintings, each weighted by its estimated seconds. Portrait mode paints the
    whole picture and then each face from its crop, and each painting counts its steps from 0 again: a bar per
    painting ran to the end, then started over, and its time left was the current painting's only."""

    def __init__(self, paintings: list[tuple[Painting, float]]) -> None:
        if not paintings:
            raise ValueError("a run has at least one painting")
        self.paintings = paintings
        self.index, self.last_step = 0, -1

    def fraction(self, step: int) -> float:
        """The run's share done at this frame's `step` (a step lower than the last one: the next painting began)."""
        if step < self.last_step and self.index + 1 < len(self.paintings):
            self.index += 1
        self.last_step = step
        total = sum(seconds for _, seconds in self.paintings)
        before = sum(seconds for _, seconds in self.paintings[: self.index])
        painting, seconds = self.paintings[self.index]
        return min(1.0, (before + seconds * painting_fraction(painting.config, step)) / max(total, 1e-9))


def _fit(t_small: float, t_large: float) -> StepPrice:
    """The two parts of a step's price from its time at the two sizes."""
    small, large = SMALL_SIDE**2 / 1e6, CALIBRATION_SIDE**2 / 1e6
    per_mp = max(0.0, (t_large - t_small) / (large - small))
    return StepPrice(max(0.0, t_small - per_mp * small), per_mp)


def _calibration_run(config: StyleConfig, device: torch.device, side: int, guidance: Guidance | None) -> ScaleRun:
    """An optimizer on random side x side pictures, one step taken (kernel selection, allocation)."""
    net = get_backbone(config, device).net
    gen = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, side, side, generator=gen).to(device)
    style = torch.rand(1, 3, side, side, generator=gen).to(device)
    config = config.replace(lbfgs_history=3, portrait=guidance is not None)
    objective = Objective(net, config, content, [style], ["calibration"], [1.0], guidance)
    run = ScaleRun(objective, content, config)
    run.step()
    return run


def _timed_step(run: ScaleRun, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    run.step()
    _sync(device)
    return time.perf_counter() - start


def estimate_seconds(config: StyleConfig, shape_hw: tuple[int, int], price: StepPrice | float) -> float:
    """The run's time: its steps and megapixel-steps at this machine's price (a number: seconds per megapixel-step
    alone)."""
    if not isinstance(price, StepPrice):
        price = StepPrice(0.0, price)
    return price.seconds(work_steps(config, shape_hw), work_megapixels(config, shape_hw))


def painting_seconds(painting: Painting, prices: StepPrices) -> float:
    """One painting's time at its own size, a guided one at the guided price (the plain one if not measured)."""
    price = prices.guided if painting.guided and prices.guided is not None else prices.plain
    return estimate_seconds(painting.config, painting.shape_hw, price)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
