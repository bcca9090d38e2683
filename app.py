"""Style Studio: the Gradio app. Drop in a face photo and a style picture and watch it being painted.

UI only: every stylization goes through `style_core.stylize()`, whose frames are the one thing that crosses
into this file. Reads top to bottom as the page looks: inputs, the live canvas, the result, the events.
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import shlex
import tempfile
import threading
import time
import typing
import uuid
from collections.abc import Callable, Iterator
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path

import gradio as gr
import pandas as pd
from PIL import Image

from queue_watch import queue_released
from style_core import PRESETS, ConfigError, ImageError, StyleConfig, StylizeError, stylize, warm_up
from style_core.api import (
    AUTO,
    AUTO_HELP,
    estimate_run_seconds,
    faces_in,
    number,
    parse_extra,
    plan_memory,
    resolve_preset,
    run_paintings,
    step_timer,
)
from style_core.cli import UNSET
from style_core.config import PRESET_HELP
from style_core.config import preset as make_preset
from style_core.devices import DeviceError
from style_core.images import DEFAULT_MAX_BYTES, load_image, resize_long_side
from style_core.portrait.faces import describe_identity
from style_core.settings import scalar
from style_core.timing import Painting, RunProgress, StepPrices
from style_core.weights import WeightsError

ROOT = Path(__file__).resolve().parent
EXAMPLES = ROOT / "examples"
RESULTS = Path(tempfile.gettempdir()) / "style-studio-results"
MAX_FILE_MB = int(os.environ.get("STYLE_STUDIO_MAX_FILE_MB", DEFAULT_MAX_BYTES // 2**20))
MAX_SIZE = int(os.environ.get("STYLE_STUDIO_MAX_SIZE", 1024))
MAX_STEPS = int(os.environ.get("STYLE_STUDIO_MAX_STEPS", 2000))
# The server's cap on a run's peak memory (GB); unset: the memory guard's default (half of the RAM free).
_MEMORY_CAP = os.environ.get("STYLE_STUDIO_MAX_MEMORY_GB", "").strip()
MAX_MEMORY_GB = float(_MEMORY_CAP) if _MEMORY_CAP else None
# Print sizes the page offers when the server allows more than the screen sizes.
PRINT_SIZES = [s for s in (2048, 2896, 4096, 5792, 8192) if s <= MAX_SIZE] + (
    [MAX_SIZE] if MAX_SIZE > 1024 and MAX_SIZE not in (2048, 2896, 4096, 5792, 8192) else []
)
DISPLAY_SIZE = 1024  # frames larger than this are shown scaled down; the download is always the full picture
# Temporary files (gradio's cache of uploads and outputs, and RESULTS) live this long; RESULTS also keeps at most
# RESULTS_KEEP pictures (gradio serves its own copy of each, so these are only the app's handle on them).
CACHE_S = max(10, int(os.environ.get("STYLE_STUDIO_CACHE_S", 3600)))
RESULTS_KEEP = max(1, int(os.environ.get("STYLE_STUDIO_RESULTS_KEEP", 32)))
USER_ERRORS = (ImageError, ConfigError, StylizeError, WeightsError, DeviceError)

# Stop flags, one per browser session: the Stop button sets it, the running job polls it every step.
_stops: dict[str, threading.Event] = {}
_weights_status = {"text": "Loading the VGG weights…"}
WEIGHTS_FAILED = "Weights could not be loaded"  # the status text's start when the start-up thread failed
_speed: dict[str, StepPrices] = {}  # "prices": what a step costs here, measured once the weights are loaded
# One engine run at a time for real: gradio hands a cancelled run's slot to the next job at once, while the
# cancelled run may still be ending its current step; the next run waits here for it (one step, not two at once).
_engine = threading.Lock()
ENGINE_WAIT_S = 60
# The step prices are measured at start-up, often beside the first uploads' face detection, which slowed one
# measurement's steps up to 30x; they are measured again this long after, if no run is painting then, and each size
# keeps its fastest step.
REMEASURE_AFTER_S = (30, 300)


class _Released(BaseException):
    """Raised from the engine's step poll once gradio's queue has let this run go (cancelled, client gone).

    A BaseException, like GeneratorExit: no `except Exception` on the way out of the engine may swallow it."""


def _warm_up_in_background() -> None:
    """Load the network at start-up so the first run doesn't pay for it; the status line reports it."""

    def work() -> None:
        try:
            _weights_status["text"] = warm_up(make_preset())
            timer = step_timer(make_preset(), make_preset("pixar-portrait"))
            _speed["prices"] = timer.measure()
        except Exception as exc:  # noqa: BLE001 - shown to the user, the app stays up
            _weights_status["text"] = f"{WEIGHTS_FAILED}: {exc}"
            return
        for wait in REMEASURE_AFTER_S:  # again while nobody paints: the first measurement may have run beside uploads
            time.sleep(wait)
            if _engine.acquire(blocking=False):
                try:
                    _speed["prices"] = timer.measure()
                except Exception:  # noqa: BLE001 - the prices measured before stay
                    pass
                finally:
                    _engine.release()

    threading.Thread(target=work, daemon=True).start()


def strength_to_multiplier(strength: float) -> float:
    """Slider 0..10 (5 = the preset's weight) to a weight multiplier: each 1.5 steps doubles it."""
    return 2.0 ** ((strength - 5.0) / 1.5)


PORTRAIT_CONTROLS = (
    "warp_strength",
    "cartoon",
    "flatten",
    "region_colors",
    "skin_smoothing",
    "skin_tone",
    "hair_tone",
)


@dataclass
class Controls:
    """The page's inputs by name. The fields' order is the order of the Paint button's inputs and of the /stylize
    API's parameters (gradio_client callers pass them by these names); `controls_handler` makes the handler's
    signature from these fields, so the three cannot drift apart."""

    content: str | None  # required in the API, as before (None: the page sent no picture)
    style: str | None
    preset: str = AUTO  # decided when the run starts: portrait mode when both pictures show a face
    size: int = 384
    style2: str | None = None
    style3: str | None = None
    blend1: float = 1.0
    blend2: float = 1.0
    blend3: float = 1.0
    steps: int = 0
    style_strength: float = 5.0
    keep_face: float = 5.0
    style_loss: str = "gram"
    optimizer: str = "lbfgs"
    pooling: str = "max"
    preserve_colors: bool = False
    match_style_colors: bool = False
    init: str = "content"
    seed: float = 0
    backbone: str = "vgg19"
    extra_json: str = ""
    warp_strength: float | None = None  # None: the preset's
    region_colors: float | None = None
    skin_smoothing: float | None = None
    face_index: int = -1  # -1: every face (each painted from its own crop); 0: the largest; 1: the next...
    cartoon: float | None = None  # None: the preset's
    flatten: float | None = None
    background: str | None = None
    skin_tone: float | None = None  # None: the preset's (the style's skin tone)
    hair_tone: float | None = None  # None: the preset's (the style's hair colour)

    def styles(self) -> list[tuple[str, float]]:
        """The style pictures given, with their blend weights."""
        pairs = ((self.style, self.blend1), (self.style2, self.blend2), (self.style3, self.blend3))
        return [(s, w) for s, w in pairs if s]


def controls_handler(fn: Callable[[Controls, gr.Request | None], Iterator]) -> Callable[..., Iterator]:
    """`fn(controls, request)` as a gradio generator handler: one parameter per Controls field (so the API
    lists them by name, with their defaults and types) and the request."""
    hints = typing.get_type_hints(Controls)
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [
        inspect.Parameter(
            f.name,
            kind,
            default=f.default if f.default is not MISSING else inspect.Parameter.empty,
            annotation=hints[f.name],
        )
        for f in fields(Controls)
    ]
    params.append(inspect.Parameter("request", kind, default=None, annotation=gr.Request | None))
    signature = inspect.Signature(params)

    def handler(*args, **kwargs):
        values = signature.bind(*args, **kwargs)
        values.apply_defaults()
        request = values.arguments.pop("request")
        yield from fn(Controls(**values.arguments), request)

    handler.__signature__ = signature
    handler.__annotations__ = {p.name: p.annotation for p in params}
    handler.__name__, handler.__doc__ = fn.__name__, fn.__doc__
    return handler


# The settings that a named parameter sets: "Other engine settings (JSON)" may not set them a second time.
NAMED_SETTINGS = {
    "size": "size",
    "steps": "steps",
    "style_weight": "style_strength",
    "content_weight": "keep_face",
    "keep_face": "keep_face",
    "style_loss": "style_loss",
    "optimizer": "optimizer",
    "pooling": "pooling",
    "preserve_colors": "preserve_colors",
    "match_style_colors": "match_style_colors",
    "init": "init",
    "seed": "seed",
    "backbone": "backbone",
    "style_blend": "blend1, blend2, blend3",
    "face_index": "face_index",
    "background": "background",
    "portrait": "preset",
    **{k: k for k in PORTRAIT_CONTROLS},
}


def extra_caps() -> dict[str, float]:
    """The server's caps on what other settings may ask for (the named ones are capped where they are read)."""
    return {
        "start_size": MAX_SIZE,
        "style_scale": 3.0,
        "lbfgs_history": 200,
        "checkpoint_every": MAX_STEPS,
        "paint_size": MAX_SIZE,
        "refine_steps": 50,
    }


def checked_controls(c: Controls) -> Controls:
    """The named parameters checked as numbers in range, so a wrong one is a one-line message (API callers can send
    anything: text, NaN, a list)."""
    optional = {k: None if getattr(c, k) is None else number(k, getattr(c, k), 0, 1) for k in PORTRAIT_CONTROLS}
    seed = c.seed
    if seed is not None and not (isinstance(seed, float) and math.isnan(seed)):
        seed = number("seed", seed, -(2**31), 2**31 - 1)
    texts = ("preset", "style_loss", "optimizer", "pooling", "init", "backbone")
    words = {k: scalar(k, getattr(c, k), str) for k in texts}
    if c.background is not None:
        words["background"] = scalar("background", c.background, str)
    if c.extra_json is not None and not isinstance(c.extra_json, str):
        raise ConfigError("extra_json must be JSON text")
    return replace(
        c,
        **words,
        size=_size(c.size),
        steps=number("steps", c.steps or 0, 0, MAX_STEPS, whole=True),
        blend1=number("blend1", c.blend1, 0, 1),
        blend2=number("blend2", c.blend2, 0, 1),
        blend3=number("blend3", c.blend3, 0, 1),
        style_strength=number("style_strength", c.style_strength, 0, 10),
        keep_face=number("keep_face", c.keep_face, 0, 10),
        preserve_colors=scalar("preserve_colors", c.preserve_colors, bool),
        match_style_colors=scalar("match_style_colors", c.match_style_colors, bool),
        seed=seed,
        face_index=number("face_index", -1 if c.face_index is None else c.face_index, -1, 99, whole=True),
        **optional,
    )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _size(value: object) -> int:
    if _is_number(value) and value > MAX_SIZE:
        raise ConfigError(f"size is limited to {MAX_SIZE} px on this server")
    return number("size", value, 16, MAX_SIZE, whole=True)


def build_config(controls: Controls, blend: list[float] | None = None) -> StyleConfig:
    """The engine config from the page's controls (plain-word sliders are multipliers on the preset)."""
    controls = checked_controls(controls)
    base = make_preset(controls.preset)
    extra = parse_extra(controls.extra_json, NAMED_SETTINGS, extra_caps())
    size, steps, seed = int(controls.size), controls.steps, controls.seed
    if MAX_MEMORY_GB is not None:  # the server's cap; a request may only lower it
        asked = extra.get("max_memory_gb")
        extra["max_memory_gb"] = MAX_MEMORY_GB if asked is None else min(float(asked), MAX_MEMORY_GB)
    keep = strength_to_multiplier(controls.keep_face)
    portrait = {k: float(getattr(controls, k)) for k in PORTRAIT_CONTROLS if getattr(controls, k) is not None}
    if controls.background:
        portrait["background"] = controls.background
    return base.replace(
        size=size,
        steps=int(steps) if steps and int(steps) > 0 else base.steps,
        style_weight=base.style_weight * strength_to_multiplier(controls.style_strength),
        content_weight=base.content_weight * keep,
        keep_face=min(100.0, base.keep_face * keep),
        style_loss=controls.style_loss,
        optimizer=controls.optimizer,
        pooling=controls.pooling,
        preserve_colors=bool(controls.preserve_colors),
        match_style_colors=bool(controls.match_style_colors),
        init=controls.init,
        seed=None if seed is None or (isinstance(seed, float) and math.isnan(seed)) or seed < 0 else int(seed),
        backbone=controls.backbone,
        style_blend=tuple(blend) if blend else None,
        face_index=None if controls.face_index < 0 else int(controls.face_index),
        **portrait,
        **extra,
    )


def cli_command(config: StyleConfig, n_styles: int, preset_name: str) -> str:
    """The command that reproduces a run, listing only what differs from the preset. Its values parse back to the
    same config: floats in full (repr), None as the CLI's UNSET."""

    def text(value: object) -> str:
        return repr(value) if isinstance(value, float) else str(value)

    base = make_preset(preset_name).to_dict()
    parts = ["python", "-m", "style_core", "CONTENT"] + [f"STYLE{i + 1}" for i in range(n_styles)]
    parts += ["-o", "out.png", "--preset", preset_name]
    for key, value in config.to_dict().items():
        if value == base.get(key):
            continue
        values = [UNSET] if value is None else value if isinstance(value, list) else [value]
        parts += ["--" + key.replace("_", "-"), *map(text, values)]
    return shlex.join(parts)


class RunSteps:
    """A frame's step counted over the whole run, for the loss plot: portrait mode's paintings (the whole picture,
    then each face's crop) each count from 0 again, and the plot's lines went back to its left edge at each."""

    def __init__(self) -> None:
        self.before, self.last, self.last_total = 0, 0, 0

    def of(self, frame) -> int:
        if frame.step < self.last:  # the next painting began
            self.before += self.last_total
        self.last, self.last_total = frame.step, frame.total_steps
        return self.before + frame.step


def progress_html(frame, progress: RunProgress, elapsed: float) -> str:
    """A progress bar over the whole run (every painting of a portrait run, each weighted by its estimated time),
    its scale and step, and the time left at the pace so far."""
    fraction = 1.0 if frame.is_final else progress.fraction(frame.step)
    eta = elapsed * (1 - fraction) / fraction if 0 < fraction < 1 else 0.0
    status = "done" if frame.is_final else f"about {eta:.0f} s left"
    label = f"Painting {progress.index + 1}/{len(progress.paintings)}: {frame.painting}" if frame.painting else ""
    return (
        f'<div class="run-progress"><div class="run-bar" style="width:{100 * fraction:.1f}%"></div></div>'
        f'<div class="run-text">{label + " · " if label else ""}'
        f"Scale {frame.scale_index + 1}/{frame.num_scales} ({frame.scale} px) · "
        f"step {frame.step}/{frame.total_steps} · {elapsed:.1f} s · {status}</div>"
    )


def run_progress(content: Image.Image, style, config: StyleConfig) -> RunProgress:
    """The run's paintings, weighted by this server's step prices (their work alone until those are measured). A
    picture the paintings cannot be told for (a face search that failed) is one painting: the bar must never stop a
    run."""
    try:
        return RunProgress(run_paintings(content, style, config, _speed.get("prices")))
    except USER_ERRORS + (ValueError,):
        return RunProgress([(Painting(config, (content.height, content.width)), 1.0)])


def time_estimate(controls: Controls) -> str:
    """What a run with these controls will cost on this server, before it starts: the memory guard's plan (its
    size and tiling) and the time from this machine's measured step prices, for the paintings the run will make
    (portrait mode: the face, or the whole picture and then each face's crop, at their own sizes). "auto" is
    decided here as the run will decide it (face detection is cached, so the run does not pay for it again)."""
    prices = _speed.get("prices")
    if prices is None:
        return "*Time estimate: measuring this server's speed…*"
    try:
        styles = controls.styles()
        style = styles[0][0] if styles and controls.content else None
        content = load_image(controls.content) if controls.content else Image.new("RGB", (768, 1024))  # 3:4
        if controls.preset == AUTO:
            chosen = resolve_preset(AUTO, content, style)[0] if style is not None else "balanced"
            controls = replace(controls, preset=chosen)
        config = build_config(controls)
        plan = plan_memory(content, config)
        seconds = estimate_run_seconds(content, style, plan.config, prices)
    except USER_ERRORS as exc:
        return f"*Time estimate: {exc}*"
    size = plan.config.size
    note = f" ({plan.note})" if plan.note else ""
    tiled = " · printed tile by tile" if size > plan.config.paint_size else ""
    mode = " in portrait mode" if plan.config.portrait else ""
    memory = f"memory about {plan.estimate / 2**30:.1f} GB"
    return f"**{size} px{mode}: about {duration_words(seconds)} on this server**{tiled} · {memory}{note}"


def duration_words(seconds: float) -> str:
    """A duration as a person says it: 45 s, 1 min 35 s (to 5 s), 12 min."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 600:
        minutes, rest = divmod(5 * round(seconds / 5), 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    return f"{seconds / 60:.0f} min"


def display(image: Image.Image) -> Image.Image:
    """A picture for the screen: print-size frames scaled down (the download keeps every pixel)."""
    if max(image.size) <= DISPLAY_SIZE:
        return image
    return resize_long_side(image, DISPLAY_SIZE)


def _save_result(image: Image.Image) -> str:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"stylized-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}.png"
    image.save(path, "PNG")
    _prune_results()
    return str(path)


def _prune_results() -> None:
    """RESULTS holds only the newest RESULTS_KEEP pictures, none older than CACHE_S seconds."""
    dated = []
    for file in RESULTS.glob("stylized-*.png"):
        try:
            dated.append((file.stat().st_mtime, file))
        except OSError:  # removed meanwhile
            continue
    dated.sort(reverse=True)
    now = time.time()
    for i, (mtime, file) in enumerate(dated):
        if i >= RESULTS_KEEP or now - mtime > CACHE_S:
            file.unlink(missing_ok=True)


@controls_handler
def run_stylize(controls: Controls, request: gr.Request | None = None):
    """Stream the painting: each engine frame updates the canvas, the progress bar and the loss plot."""
    if not controls.content:
        raise gr.Error("Add a content photo first (upload, webcam or paste).")
    styles = controls.styles()
    if not styles:
        raise gr.Error("Add at least one style picture.")
    session = getattr(request, "session_hash", None) or uuid.uuid4().hex
    stop = _stops[session] = threading.Event()  # this run's own: a cancelled run may still be ending beside it
    released = queue_released()

    def should_stop() -> bool:
        if released():
            raise _Released  # nobody waits for this picture: end now, without a final frame
        return stop.is_set()

    engine_held = False
    try:
        content_img = load_image(controls.content)
        chosen, why = resolve_preset(scalar("preset", controls.preset, str), content_img, styles[0][0])
        controls = replace(controls, preset=chosen)
        mode = f"**Mode:** {why}"
        config = build_config(controls, [w for _, w in styles] if len(styles) > 1 else None)
        progress = run_progress(content_img, styles[0][0], config)
        frames = stylize(content_img, [s for s, _ in styles], config, should_stop=should_stop)
        if not _engine.acquire(timeout=ENGINE_WAIT_S):
            raise gr.Error("The previous run has not ended yet; try again in a moment.")
        engine_held = True
        started = time.perf_counter()
        history: list[dict] = []
        gallery: list[tuple[Image.Image, str]] = []
        warned = ""
        plot_steps = RunSteps()
        for frame in frames:
            step = plot_steps.of(frame)
            for term, value in frame.losses.items():
                if value > 0:
                    history.append({"step": step, "log10 loss": math.log10(value), "term": term})
            if frame.event in ("scale", "final"):
                gallery.append((display(frame.image), f"{frame.scale} px · step {frame.step}"))
            if frame.message and frame.message != warned and not frame.is_final:
                gr.Warning(frame.message)  # once per message: a recovery, or a smaller size after an out-of-memory
                warned = frame.message
            plot = pd.DataFrame(history, columns=["step", "log10 loss", "term"])
            elapsed = time.perf_counter() - started  # the run's, not the painting's (a crop's counts from its start)
            bar = progress_html(frame, progress, elapsed)
            if not frame.is_final:
                # None, not gr.skip(), for the outputs that carry files: gradio 6.31 answers a skip with a session
                # copy of the component that its cache cleaner (delete_cache) never sees, so the files the final
                # frame then writes through it would stay on disk for good.
                shown = display(frame.image)
                yield (shown, bar, plot, None, None, gr.skip(), None, gr.skip(), mode)
                continue
            if frame.message:
                gr.Info(frame.message)
            shown = display(frame.image)
            before = resize_long_side(content_img, max(shown.size)).resize(shown.size)
            settings = {
                "command": cli_command(config, len(styles), controls.preset),
                "config": config.to_dict(),
                "steps_run": frame.step,
                "seconds": round(elapsed, 1),
                "weights": _weights_status["text"],
                "identity_distance": frame.identity,
                "identity_per_face": list(frame.identities),
                "mode": why,
            }
            yield (
                shown,
                bar,
                plot,
                (before, shown),
                gallery,
                settings,
                _save_result(frame.image),
                identity_text(frame, config),
                mode,
            )
    except USER_ERRORS as exc:
        raise gr.Error(str(exc)) from None
    except (ValueError, TypeError) as exc:  # a parameter no check foresaw: still one line, never a traceback
        print(f"Style Studio: refused a run's parameters: {exc!r}")
        raise gr.Error(f"a parameter could not be used: {str(exc).splitlines()[0][:200]}") from None
    except _Released:
        print(f"Style Studio: a run was cancelled or its client left; it ended at once (session {session[:8]})")
    finally:
        if engine_held:
            frames.close()  # the engine's own cleanup, before the next run may start
            _engine.release()
        if _stops.get(session) is stop:
            del _stops[session]


def identity_text(frame, config: StyleConfig) -> str:
    """The identity score in plain words (portrait mode), or why there is none."""
    if len(frame.identities) > 1:
        each = "; ".join(f"face {i + 1}: {describe_identity(d)}" for i, d in enumerate(frame.identities))
        return f"**Identity:** {each}"
    if frame.identity is not None:
        return f"**Identity:** {describe_identity(frame.identity)}"
    if config.portrait:
        return f"**Identity:** {frame.message or 'no face found in the result'}"
    return "**Identity:** (portrait mode only)"


def faces_hint(content: str | None, style: str | None, current: str) -> str:
    """What "auto" will do with these pictures, said under the preset menu; the menu itself is never switched (the
    run decides). The faces found here are cached, so the run does not look for them again."""
    if not content or not style:
        return ""
    try:
        found = faces_in(content, style)
    except USER_ERRORS:
        return ""
    if isinstance(found, str):
        return f"Portrait mode is not available: {found}."
    if current != AUTO:
        return ""
    if all(found):
        return "Faces in both pictures: **auto** will paint in **portrait mode**."
    return "No face in one of the pictures: **auto** will paint in **plain mode**."


def print_size_chosen(choice: str | int):
    """A print size sets the output size ("off" leaves it)."""
    return gr.skip() if choice in (None, "off") else gr.update(value=int(choice))


def estimate_changed(*values):
    """The time estimate for the page's current controls (in Controls' order)."""
    return time_estimate(Controls(*values))


def estimate_once_measured(*values):
    """The time estimate as soon as this server's speed is measured, then no more polling. Only a control's change
    updated it, so a photo dropped in while the speed was still being measured (the first seconds after start) left
    "measuring this server's speed…" on the page through the whole run."""
    if _speed.get("prices") is not None:
        return time_estimate(Controls(*values)), gr.Timer(active=False)
    if _weights_status["text"].startswith(WEIGHTS_FAILED):
        return "*Time estimate: not available (the engine did not start)*", gr.Timer(active=False)
    return gr.skip(), gr.Timer(active=True)


def request_stop(request: gr.Request) -> None:
    """Ask this session's running job to finish now with the picture so far."""
    event = _stops.get(request.session_hash)
    if event is not None:
        event.set()


def preset_changed(name: str):
    """Moving to a preset shows its output size and portrait settings; its step count applies while Quality is 0."""
    cfg = make_preset("balanced" if name == AUTO else name)
    return (
        gr.update(value=min(cfg.size, MAX_SIZE)),
        AUTO_HELP if name == AUTO else PRESET_HELP.get(name, ""),
        *(getattr(cfg, k) if cfg.portrait else gr.skip() for k in PORTRAIT_CONTROLS),
    )


def weights_status():
    """The status line; its timer stops polling once the weights are loaded."""
    text = _weights_status["text"]
    return f"**Engine:** {text}", gr.Timer(active=text.startswith("Loading"))


def _api_number(label: str | None, payload: object) -> object:
    """A slider's or number box's value from the API: a finite number, or a one-line message naming the control.
    (Gradio's own check fails on text with a TypeError that reaches the caller as "The upstream Gradio app has
    raised an exception"; a gr.Error raised in preprocess reaches it as it is.)"""
    if payload is None:
        return payload
    if isinstance(payload, bool) or not isinstance(payload, (int, float)) or not math.isfinite(payload):
        shown = repr(payload) if len(repr(payload)) <= 40 else repr(payload)[:37] + "..."
        raise gr.Error(f"{label or 'a number'} must be a finite number (got {shown})", print_exception=False)
    return payload


def checked(component: gr.Slider | gr.Number) -> gr.Slider | gr.Number:
    """The component with its API value checked before gradio's own preprocessing (see `_api_number`). An instance
    attribute, not a subclass: gradio writes a .pyi file beside any module that subclasses a component."""
    preprocess = component.preprocess

    def checked_preprocess(payload):
        return preprocess(_api_number(component.label, payload))

    component.preprocess = checked_preprocess
    return component


CSS = """
.run-progress { width: 100%; height: 10px; background: var(--neutral-200); border-radius: 5px; overflow: hidden; }
.run-bar { height: 100%; background: var(--color-accent); transition: width 0.3s; }
.run-text { font-size: 0.9em; margin-top: 4px; }
#canvas img { width: 100%; height: 100%; object-fit: contain; image-rendering: auto; }
"""


def example_rows() -> list[list[str]]:
    """Pictures the project made itself (see examples/README.md): content photo, style, preset. The first row is the
    point of the app: a face with an animated-film face, in portrait mode."""
    rows = [
        ["content_generated_face.png", "style_generated_toon_face.png", "pixar-portrait"],
        ["content_generated_face.png", "style_generated_swirls.png", AUTO],
        ["content_generated_face.png", "style_generated_mosaic.png", AUTO],
        ["content_generated_face.png", "style_generated_waves.png", AUTO],
    ]
    found = [(EXAMPLES / c, EXAMPLES / s, p) for c, s, p in rows]
    return [[str(c), str(s), p] for c, s, p in found if c.exists() and s.exists()]


FIRST_EXAMPLE_RESULT = EXAMPLES / "result_generated_toon_portrait.png"


def build_app(initial_preset: str = AUTO) -> gr.Blocks:
    with gr.Blocks(title="Style Studio", delete_cache=(min(600, CACHE_S), CACHE_S)) as demo:
        gr.Markdown("# Style Studio\nRepaint a face photo in the style of any picture, and watch it being painted.")
        status = gr.Markdown(f"**Engine:** {_weights_status['text']}")
        status_timer = gr.Timer(1.0)
        with gr.Row():
            with gr.Column(scale=1):
                content = gr.Image(
                    label="Your photo",
                    elem_id="content",
                    type="filepath",
                    sources=["upload", "webcam", "clipboard"],
                    height=260,
                )
                style = gr.Image(
                    label="Style picture", elem_id="style", type="filepath", sources=["upload", "clipboard"], height=260
                )
                with gr.Accordion("Blend more styles", open=False):
                    with gr.Row():
                        style2 = gr.Image(label="Style 2", type="filepath", sources=["upload", "clipboard"], height=160)
                        style3 = gr.Image(label="Style 3", type="filepath", sources=["upload", "clipboard"], height=160)
                    with gr.Row():
                        blend1 = gr.Slider(0, 1, value=1.0, step=0.05, label="Weight of style 1")
                        blend2 = gr.Slider(0, 1, value=1.0, step=0.05, label="Weight of style 2")
                        blend3 = gr.Slider(0, 1, value=1.0, step=0.05, label="Weight of style 3")
                preset_menu = gr.Dropdown([AUTO, *PRESETS], value=initial_preset, label="Preset", elem_id="preset")
                preset_info = gr.Markdown(AUTO_HELP if initial_preset == AUTO else PRESET_HELP.get(initial_preset, ""))
                mode_hint = gr.Markdown("", elem_id="mode-hint")
                background = gr.Radio(
                    ["painted", "flat", "photo"],
                    value=make_preset("pixar-portrait").background,
                    label="Background (portrait mode)",
                    info="photo: keep your photo's background and paint only the face and hair; "
                    "flat: simplified photo colours; painted: all of it painted",
                    elem_id="background",
                )
                style_strength = gr.Slider(
                    0,
                    10,
                    value=5,
                    step=0.5,
                    label="Style strength",
                    info="how much of the style picture to paint in (5 = preset)",
                )
                keep_face = gr.Slider(
                    0,
                    10,
                    value=5,
                    step=0.5,
                    label="Keep-the-face strength",
                    info="how much of your photo's features to keep (5 = preset)",
                )
                size = gr.Slider(
                    64,
                    MAX_SIZE,
                    value=min(make_preset("balanced" if initial_preset == AUTO else initial_preset).size, MAX_SIZE),
                    step=16,
                    label="Output size (long side, px)",
                    elem_id="size",
                )
                print_size = gr.Dropdown(
                    ["off", *PRINT_SIZES],
                    value="off",
                    label="Print size",
                    info="paints up to 1024 px, then refines tile by tile at full size; downloads at full size",
                    visible=bool(PRINT_SIZES),
                    elem_id="print-size",
                )
                estimate = gr.Markdown("*Time estimate: measuring this server's speed…*", elem_id="estimate")
                estimate_timer = gr.Timer(1.0)
                steps = gr.Slider(
                    0,
                    2000,
                    value=0,
                    step=10,
                    label="Quality (optimizer steps)",
                    info="more steps: finer detail, longer wait; 0 = the preset's number",
                )
                with gr.Accordion("Advanced", open=False):
                    with gr.Row():
                        style_loss = gr.Radio(
                            ["gram", "w2"],
                            value="gram",
                            label="Style loss",
                            info="Gram (Gatys) or Wasserstein-2 of feature distributions",
                        )
                        optimizer = gr.Radio(["lbfgs", "adam"], value="lbfgs", label="Optimizer")
                        pooling = gr.Radio(["max", "avg"], value="max", label="Pooling")
                    with gr.Row():
                        init = gr.Radio(["content", "noise", "blend"], value="content", label="Start from")
                        backbone = gr.Radio(["vgg19", "vgg16"], value="vgg19", label="Network")
                        seed = gr.Number(value=0, precision=0, label="Seed (-1: random)")
                    with gr.Row():
                        preserve_colors = gr.Checkbox(label="Keep my photo's colours")
                        match_style_colors = gr.Checkbox(label="Recolour the style to my photo's palette first")
                    with gr.Row():
                        pix = make_preset("pixar-portrait")
                        cartoon = gr.Slider(
                            0,
                            1,
                            value=pix.cartoon,
                            step=0.05,
                            label="Portrait: cartoon proportions",
                            info="bigger eyes, smaller nose and mouth, rounder chin",
                        )
                        warp_strength = gr.Slider(
                            0, 1, value=pix.warp_strength, step=0.05, label="Portrait: face shape toward the style's"
                        )
                        flatten = gr.Slider(
                            0, 1, value=pix.flatten, step=0.05, label="Portrait: smooth skin (paint from a flat photo)"
                        )
                        region_colors = gr.Slider(
                            0, 1, value=pix.region_colors, step=0.05, label="Portrait: cartoon colours (skin, hair)"
                        )
                        skin_smoothing = gr.Slider(
                            0, 1, value=pix.skin_smoothing, step=0.05, label="Portrait: skin smoothing"
                        )
                        skin_tone = gr.Slider(
                            0,
                            1,
                            value=pix.skin_tone,
                            step=0.05,
                            label="Portrait: keep my skin tone",
                            info="0: the style's skin tone; 1: yours, in the style's hue and shading",
                        )
                        hair_tone = gr.Slider(
                            0,
                            1,
                            value=pix.hair_tone,
                            step=0.05,
                            label="Portrait: keep my hair colour",
                            info="0: the style's hair colour; 1: yours, in the style's strands and shading",
                        )
                    with gr.Row():
                        face_index = gr.Number(
                            value=-1, precision=0, label="Portrait: which face (-1 = every face, 0 = the largest)"
                        )
                    extra_json = gr.Code(value="", language="json", label="Other engine settings (JSON)", lines=3)
                    gr.Markdown(
                        "Any `python -m style_core --help` field, e.g. "
                        '`{"tv_weight": 20, "style_layers": ["relu1_1", "relu3_1"]}`'
                    )
                with gr.Row():
                    run = gr.Button("Paint", variant="primary", elem_id="run-btn")
                    stop = gr.Button("Stop", variant="stop", elem_id="stop-btn")
            with gr.Column(scale=1):
                canvas = gr.Image(
                    label="Painting", type="pil", format="png", interactive=False, height=420, elem_id="canvas"
                )
                progress = gr.HTML('<div class="run-text">Ready.</div>', label="Progress", elem_id="progress")
                loss_plot = gr.LinePlot(x="step", y="log10 loss", color="term", label="Loss", height=220)
                with gr.Tab("Before / after"):
                    compare = gr.ImageSlider(label="Before / after", type="pil", interactive=False)
                with gr.Tab("Scales"):
                    gallery = gr.Gallery(label="The picture at the end of each scale", columns=4, height=240)
                with gr.Tab("Settings"):
                    settings = gr.JSON(label="What made this picture")
                mode = gr.Markdown("**Mode:** decided when you press Paint", elem_id="mode")
                identity = gr.Markdown("**Identity:** (portrait mode only)", elem_id="identity")
                download = gr.File(label="Full-resolution PNG", interactive=False, elem_id="download")

        if example_rows():
            with gr.Row():
                with gr.Column(scale=3):
                    gr.Examples(
                        example_rows(), inputs=[content, style, preset_menu], label="Examples (made by this project)"
                    )
                if FIRST_EXAMPLE_RESULT.exists():
                    with gr.Column(scale=1, min_width=200):
                        gr.Image(
                            str(FIRST_EXAMPLE_RESULT),
                            label="The first example, painted in portrait mode",
                            interactive=False,
                            height=240,
                            elem_id="first-example-result",
                        )

        components = {
            "content": content,
            "style": style,
            "preset": preset_menu,
            "size": size,
            "style2": style2,
            "style3": style3,
            "blend1": blend1,
            "blend2": blend2,
            "blend3": blend3,
            "steps": steps,
            "style_strength": style_strength,
            "keep_face": keep_face,
            "style_loss": style_loss,
            "optimizer": optimizer,
            "pooling": pooling,
            "preserve_colors": preserve_colors,
            "match_style_colors": match_style_colors,
            "init": init,
            "seed": seed,
            "backbone": backbone,
            "extra_json": extra_json,
            "warp_strength": warp_strength,
            "region_colors": region_colors,
            "skin_smoothing": skin_smoothing,
            "face_index": face_index,
            "cartoon": cartoon,
            "flatten": flatten,
            "background": background,
            "skin_tone": skin_tone,
            "hair_tone": hair_tone,
        }
        inputs = [components[f.name] for f in fields(Controls)]  # a missing or misspelt one fails here, at start
        for component in inputs:
            if isinstance(component, (gr.Slider, gr.Number)):
                checked(component)  # a non-number from the API: one line naming the control
        outputs = [canvas, progress, loss_plot, compare, gallery, settings, download, identity, mode]
        run.click(
            run_stylize,
            inputs,
            outputs,
            api_name="stylize",
            concurrency_limit=1,
            concurrency_id="device",
            show_progress="full",
            show_progress_on=[progress],
        )
        stop.click(request_stop, None, None, queue=False, api_name="stop")
        print_size.change(print_size_chosen, print_size, size, api_name=False)
        for control in (size, steps, preset_menu, content, extra_json):
            control.change(estimate_changed, inputs, estimate, api_name=False, show_progress="hidden")
        preset_menu.change(
            preset_changed,
            preset_menu,
            [size, preset_info, *(components[k] for k in PORTRAIT_CONTROLS)],
            api_name=False,
        )
        for picture in (content, style):
            picture.change(faces_hint, [content, style, preset_menu], mode_hint, api_name=False, concurrency_id="faces")
        preset_menu.change(faces_hint, [content, style, preset_menu], mode_hint, api_name=False, concurrency_id="faces")
        status_timer.tick(weights_status, None, [status, status_timer], api_name=False, show_progress="hidden")
        estimate_timer.tick(
            estimate_once_measured, inputs, [estimate, estimate_timer], api_name=False, show_progress="hidden"
        )
        demo.load(weights_status, None, [status, status_timer], api_name=False, show_progress="hidden")
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description="Style Studio: the live neural-style portrait app")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true", help="also serve through a public gradio.live link")
    parser.add_argument(
        "--preset", default=AUTO, choices=[AUTO, *PRESETS], help="preset when the page opens (auto: the run decides)"
    )
    parser.add_argument(
        "--auth",
        default=os.environ.get("STYLE_STUDIO_AUTH"),
        help="USER:PASS required to open the app (recommended with --share)",
    )
    args = parser.parse_args()
    auth = tuple(args.auth.split(":", 1)) if args.auth and ":" in args.auth else None
    _warm_up_in_background()
    demo = build_app(args.preset)
    demo.queue(default_concurrency_limit=1, max_size=32).launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        auth=auth,
        css=CSS,
        theme=gr.themes.Soft(),
        max_file_size=f"{MAX_FILE_MB}mb",
        allowed_paths=[str(EXAMPLES)],
        show_error=False,
    )


if __name__ == "__main__":
    main()
