"""One plain or guided run at the configured size, as a generator of frames: the engine's building block.

`run()` prepares the pictures and the network, then runs the coarse-to-fine scales; each scale builds its
`Objective` (objective.py) and optimizes it with a `ScaleRun` (scale_run.py). It knows nothing of portrait mode
or of out-of-memory retries: the facade (`api.stylize`) decides those and calls this. Callers stop a run by
closing the generator; tensors are released in `finally`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image

from .backbone import VGGFeatures
from .color import match_colors, preserve_colors
from .config import StyleConfig, scale_sizes, steps_per_scale, tile_above
from .devices import pick_device
from .frames import Frame, Guidance, StylizeError
from .images import ImageSource, load_image, resize_long_side
from .networks import get_backbone
from .objective import Objective
from .scale_run import ScaleRun, graph_mode
from .tiling import TiledScale


def to_tensor(img: Image.Image, device: torch.device) -> torch.Tensor:
    return TF.to_tensor(img).unsqueeze(0).to(device)


def to_pil(x: torch.Tensor) -> Image.Image:
    """A (1, 3, H, W) picture in [0, 1] as a PIL image, quantised where it lies (as torchvision's to_pil_image
    quantises: x 255, truncated): a quarter of the bytes cross from a GPU, and the host does no arithmetic on them."""
    pixels = x.detach().squeeze(0).float().clamp(0, 1).mul(255).byte().permute(1, 2, 0).contiguous()
    return Image.fromarray(pixels.cpu().numpy(), "RGB")


@dataclass
class _Job:
    """What a run fixes before its first scale, and how far it has come."""

    content: Image.Image
    styles: list[Image.Image]
    keys: list[str]  # the style pictures' digests (the statistics cache's key)
    blend: list[float]
    net: VGGFeatures
    device: torch.device
    graph_mode: str | None
    sizes: list[int]
    counts: list[int]
    start: float
    step: int = 0


def run(
    content: ImageSource,
    styles: Sequence[ImageSource],
    config: StyleConfig,
    backbone: VGGFeatures | None = None,
    guidance: Guidance | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[Frame]:
    """Paint `content` in the style of `styles` at `config.size`, yielding frames; the last has is_final=True.

    `backbone` overrides the configured network (tests pass a tiny random one); `guidance` matches regions
    (portrait mode). `should_stop` is polled every step: when it returns True the run ends at once with a final
    frame of the current picture.
    """
    job = _prepare(content, list(styles), config.validate(), backbone)
    yield from _paint(job, config, guidance, should_stop)


def _prepare(
    content: ImageSource, style_list: list[ImageSource], config: StyleConfig, backbone: VGGFeatures | None
) -> _Job:
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
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # a handful of shapes per run, each autotuned once per process
    missing = [n for n in (*config.content_layers, *config.style_layers) if n not in net.layers]
    if missing:
        raise StylizeError(f"the network was built without the layers {missing}")
    if config.match_style_colors:
        ref = to_tensor(resize_long_side(content_img, 256), torch.device("cpu"))
        style_imgs = [to_pil(match_colors(to_tensor(s, torch.device("cpu")), ref)) for s in style_imgs]
    sizes = scale_sizes(config)
    return _Job(
        content_img,
        style_imgs,
        [_digest(s) for s in style_imgs],
        blend,
        net,
        device,
        graph_mode(config, device),
        sizes,
        steps_per_scale(config, len(sizes)),
        start,
    )


def _paint(
    job: _Job, config: StyleConfig, guidance: Guidance | None, should_stop: Callable[[], bool] | None
) -> Iterator[Frame]:
    """The scales, coarse to fine: each starts from the previous one's picture, resized. Scales above
    `tile_above` run tile by tile (tiling.py)."""
    x: torch.Tensor | None = None
    scale = None
    pairs: tuple[torch.Tensor, torch.Tensor] | None = None  # the last scale's L-BFGS pairs, as pictures
    try:
        for si, (side, n_steps) in enumerate(zip(job.sizes, job.counts)):
            scale, content_t = _scale(job, config, guidance, side, n_steps, x, pairs)

            def frame(event: str, scale=scale, content_t: torch.Tensor = content_t, si: int = si) -> Frame:
                return _frame(job, scale, content_t, config, si, event)

            last = si == len(job.sizes) - 1
            if isinstance(scale, TiledScale):
                ended = yield from _tiles(job, scale, n_steps, frame, should_stop, last)
            else:
                ended = yield from _steps(job, scale, n_steps, frame, should_stop, last)
            x = scale.result().detach()
            hand_down = config.warm_curvature and not last and job.sizes[si + 1] <= tile_above(config)
            pairs = _pairs_as_pictures(scale, x) if hand_down else None  # only for an untiled scale to come
            if ended:
                return
    finally:
        del x, scale
        if job.device.type == "cuda":
            torch.cuda.empty_cache()


# The newest pairs only: they describe the curvature near the picture handed down, and the resized copy stays small
# (it is dropped once seeded, before the finer scale's first step allocates its activations; measured at 256 px,
# single thread: 20 pairs reach the seed's objective at the same step as all 50, 8 one step later).
HANDED_DOWN_PAIRS = 20


def _pairs_as_pictures(scale: ScaleRun | TiledScale, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The scale's L-BFGS pairs (moves, gradient changes) shaped as pictures like `x`, for the next scale."""
    pairs = scale.curvature_pairs(HANDED_DOWN_PAIRS) if isinstance(scale, ScaleRun) else None
    if pairs is None:
        return None
    s_rows, y_rows = pairs
    return s_rows.view(-1, *x.shape[1:]), y_rows.view(-1, *x.shape[1:])


def _resized_pairs(pairs: tuple[torch.Tensor, torch.Tensor], like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Coarse pairs on the finer grid: the moves resized; the gradient changes resized and divided by the growth in
    pixels (the losses are means over pixels, so each pixel's share of a gradient shrinks as the picture grows).
    What they knew of the coarse picture's curvature is then the fine picture's first guess of its own."""
    s_img, y_img = pairs
    size = like.shape[-2:]
    growth = (size[0] * size[1]) / (s_img.shape[-2] * s_img.shape[-1])
    s_fine = F.interpolate(s_img, size=size, mode="bilinear", align_corners=False)
    y_fine = F.interpolate(y_img, size=size, mode="bilinear", align_corners=False) / growth
    return s_fine.flatten(1), y_fine.flatten(1)


def _scale(
    job: _Job,
    config: StyleConfig,
    guidance: Guidance | None,
    side: int,
    n_steps: int,
    x: torch.Tensor | None,
    pairs: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[ScaleRun | TiledScale, torch.Tensor]:
    """One scale's optimizer (untiled or tiled) and its photo, starting from `x` resized (None: the first scale),
    L-BFGS starting from the scale before's curvature `pairs` (as pictures; None: a cold start)."""
    content_t = to_tensor(resize_long_side(job.content, side), job.device)
    style_side = max(16, round(side * config.style_scale))
    style_ts = [to_tensor(resize_long_side(s, style_side), job.device) for s in job.styles]
    if x is None:
        x = _initial_image(config, content_t)
    else:
        x = F.interpolate(x, size=content_t.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)
    # History beyond the scale's steps is never filled: not allocating it is what lets large scales fit.
    config = config.replace(lbfgs_history=min(config.lbfgs_history, max(1, n_steps)))
    if side > tile_above(config):
        return TiledScale(job.net, config, content_t, style_ts, job.keys, job.blend, guidance, x), content_t
    objective = Objective(job.net, config, content_t, style_ts, job.keys, job.blend, guidance)
    inherited = None if pairs is None else _resized_pairs(pairs, x)
    return ScaleRun(objective, x, config, job.graph_mode, inherited=inherited), content_t


def _tiles(
    job: _Job,
    scale: TiledScale,
    n_steps: int,
    frame: Callable[[str], Frame],
    should_stop: Callable[[], bool] | None,
    last: bool,
) -> Generator[Frame, None, bool]:
    """A tiled scale: `n_steps` steps on each tile in turn, a frame of the whole picture after each tile."""
    first, count = job.step, len(scale.tiles)
    for i in range(count):
        stopped = scale.run_tile(i, n_steps, should_stop)
        job.step = first + round(n_steps * (i + 1) / count)
        if stopped:
            scale.message = "stopped early; this is the picture so far"
            yield frame("final")
            return True
        if i < count - 1:
            yield frame("progress")
    yield frame("final" if last else "scale")
    return False


def _steps(
    job: _Job,
    scale: ScaleRun,
    n_steps: int,
    frame: Callable[[str], Frame],
    should_stop: Callable[[], bool] | None,
    last: bool,
) -> Generator[Frame, None, bool]:
    """One scale's steps, a frame every `checkpoint_every` steps and one at its end; True: the run ends here."""
    config = scale.config
    done_here = 0
    while done_here < n_steps:
        if should_stop is not None and should_stop():
            scale.message = "stopped early; this is the picture so far"
            scale.check_finite()
            scale.settle()
            yield frame("final")
            return True
        scale.step()
        done_here += 1
        job.step += 1
        at_checkpoint = job.step % config.checkpoint_every == 0
        if at_checkpoint or done_here == n_steps:
            scale.check_finite()
            if scale.failed:
                break
            if scale.done_scale or (config.early_stop and scale.converged(config.early_stop)):
                job.step += n_steps - done_here
                done_here = n_steps
        if at_checkpoint and done_here < n_steps:
            yield frame("progress")
    scale.settle()  # the last move is scored before it is shown as the scale's result or handed on
    yield frame("final" if last or scale.failed else "scale")
    return scale.failed


def _frame(
    job: _Job, scale: ScaleRun | TiledScale, content_t: torch.Tensor, config: StyleConfig, si: int, event: str
) -> Frame:
    img = scale.result()
    if config.preserve_colors:
        img = preserve_colors(img, content_t)
    return Frame(
        to_pil(img),
        job.step,
        sum(job.counts),
        job.sizes[si],
        si,
        len(job.sizes),
        scale.read_losses(),
        time.perf_counter() - job.start,
        event == "final",
        event,
        scale.message,
    )


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
