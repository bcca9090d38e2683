"""`stylize()`: the one entry point for the app, the CLI and Python callers.

It decides the mode (plain, or portrait when `config.portrait` is set) and owns the out-of-memory retry; the
engine (`engine.run`) paints, the portrait pipeline (`portrait.pipeline`) adds faces around it. Arrows point
one way: this module knows both, the portrait pipeline knows the engine, the engine knows neither.
"""

from __future__ import annotations

import dataclasses
import gc
import warnings
from collections.abc import Callable, Iterator, Sequence

import torch

from . import engine, memory
from .allocator import freed_memory_kept
from .backbone import VGGFeatures
from .config import StyleConfig
from .devices import pick_device
from .frames import Frame, StylizeError
from .images import ImageSource, load_image
from .modes import AUTO, AUTO_HELP, faces_in, resolve_preset  # noqa: F401 - the app's way to the auto preset
from .networks import get_backbone, use_autocast
from .settings import number, parse_extra  # noqa: F401 - the app checks its parameters with these
from .timing import CALIBRATION_SIDE, Painting, StepPrice, StepPrices, StepTimer, painting_seconds

MIN_RETRY_SIZE = 128


def stylize(
    content: ImageSource,
    styles: ImageSource | Sequence[ImageSource],
    config: StyleConfig | None = None,
    backbone: VGGFeatures | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[Frame]:
    """Paint `content` in the style of `styles`, yielding frames as it goes; the last has is_final=True.

    `backbone` overrides the configured network (tests pass a tiny random one). Close the generator to
    stop; nothing keeps running after that. `should_stop` is polled every step: when it returns True the
    run ends at once with a final frame of the current picture (a UI's Stop button keeps its result).
    Before the run, the memory guard (`plan_memory`) estimates its peak: a size that would not fit runs its
    large scales tile by tile, or, if even that would not fit, is painted at the largest size that does, with a
    warning. Should memory still run out (a GPU shared with others), the run starts again at 3/4 of the size,
    with a warning and the reason in each frame's `message`.
    """
    config = (config or StyleConfig()).validate()
    with freed_memory_kept():  # a step reuses the last one's buffers instead of faulting in new pages
        yield from _stylize(content, styles, config, backbone, should_stop)


def _stylize(
    content: ImageSource,
    styles: ImageSource | Sequence[ImageSource],
    config: StyleConfig,
    backbone: VGGFeatures | None,
    should_stop: Callable[[], bool] | None,
) -> Iterator[Frame]:
    style_list = list(styles) if isinstance(styles, (list, tuple)) else [styles]
    content = load_image(content)
    plan = plan_memory(content, config, backbone)
    config, notice = plan.config, plan.note
    if notice:
        warnings.warn(notice, RuntimeWarning, stacklevel=3)
    while True:
        attempt = _attempt(content, style_list, config, backbone, should_stop)
        try:
            for frame in attempt:
                if notice:
                    frame.message = "; ".join(m for m in (notice, frame.message) if m)
                yield frame
            return
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
        # Out of memory: the exception (and its traceback's activations) is gone here, so memory can be freed.
        del attempt
        _free_device_memory()
        smaller = smaller_size(config.size)
        if smaller is None:
            raise StylizeError(f"out of memory even at {config.size} px; try a smaller size or the CPU")
        notice = f"out of memory at {config.size} px, so it was painted at {smaller} px"
        warnings.warn(notice, RuntimeWarning, stacklevel=3)
        config = config.replace(size=smaller, start_size=min(config.start_size, smaller))


def plan_memory(
    content: ImageSource, config: StyleConfig, backbone: VGGFeatures | None = None
) -> memory.MemoryPlan:
    """The memory guard's plan for painting `content` with `config` on this machine (its size, which scales are
    tiled and how big the tiles are), within `config.max_memory_gb` or what the device has free."""
    config = config.validate()
    image = load_image(content)
    device = pick_device(config.device) if backbone is None else next(backbone.parameters()).device
    net = backbone if backbone is not None else get_backbone(config, device).net
    low = config.autocast and use_autocast(device)
    costs = memory.network_costs(net, 2 if low else 4, guided=config.portrait)
    budget = memory.budget_bytes(config, device)
    plan = memory.plan_memory(config, (image.height, image.width), costs, budget, portrait=config.portrait)
    return dataclasses.replace(plan, held=memory.held_bytes(device))


def step_timer(config: StyleConfig, portrait_config: StyleConfig) -> StepTimer:
    """What measures this machine's price of a plain step (with `config`'s layers) and of a guided one
    (`portrait_config`'s layers, portrait mode's regions): what `estimate_run_seconds` prices a run at."""
    from .portrait.schedule import calibration_guidance

    device = pick_device(config.device)
    return StepTimer(config, device, portrait_config, calibration_guidance(CALIBRATION_SIDE))


def estimate_run_seconds(
    content: ImageSource, style: ImageSource | None, config: StyleConfig, prices: StepPrices | StepPrice
) -> float:
    """How long `stylize(content, style, config)` will take here, from the paintings it will make (portrait mode:
    the picture, or the picture then each face's crop, at their own sizes, guided ones at the guided price) and
    portrait mode's work outside the engine. `config` is the memory guard's (`plan_memory(...).config`)."""
    return sum(seconds for _, seconds in run_paintings(content, style, config, prices))


def run_paintings(
    content: ImageSource, style: ImageSource | None, config: StyleConfig, prices: StepPrices | StepPrice | None
) -> list[tuple[Painting, float]]:
    """The engine runs `stylize(content, style, config)` will make, in order, each with its seconds here (a guided
    one with portrait mode's work outside the engine for its face). Prices not measured yet: each painting's
    megapixel-steps instead, which still give their shares of the run (`timing.RunProgress`)."""
    image = load_image(content)
    paintings, overhead = [Painting(config, (image.height, image.width))], 0.0
    if config.portrait:  # dlib loads only for portrait mode
        from .portrait.schedule import FACE_OVERHEAD_S, portrait_paintings

        paintings, _ = portrait_paintings(image, style, config)
        overhead = FACE_OVERHEAD_S if prices is not None else 0.0
    if prices is None:
        prices = StepPrices(StepPrice(0.0, 1.0))
    elif isinstance(prices, StepPrice):
        prices = StepPrices(prices)
    return [(p, painting_seconds(p, prices) + (overhead if p.guided else 0.0)) for p in paintings]


def _attempt(
    content: ImageSource,
    styles: list[ImageSource],
    config: StyleConfig,
    backbone: VGGFeatures | None,
    should_stop: Callable[[], bool] | None,
) -> Iterator[Frame]:
    """One try at the configured size, in the configured mode."""
    if config.portrait:
        from .portrait.pipeline import stylize_portrait  # dlib and scipy load only when portrait mode is used

        return stylize_portrait(content, styles, config, backbone=backbone, should_stop=should_stop)
    return engine.run(content, styles, config, backbone=backbone, should_stop=should_stop)


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or the CPU allocator's failure (a plain RuntimeError)."""
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)
    )


def smaller_size(size: int) -> int | None:
    """The next size to try after running out of memory: three quarters of the pixels' long side."""
    if size <= MIN_RETRY_SIZE:
        return None
    return max(MIN_RETRY_SIZE, int(size * 0.75))


def _free_device_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
