"""Timings on a GPU (run through benchmarks/gpu.sh): the balanced preset at 512 and 1024 px and the portrait preset
at 512 px, each with CUDA graphs off, on, and on with L-BFGS's update recorded too (`cuda_graph_update`), against
torch's own L-BFGS in the same run; a run whose every frame is encoded (the app's preview) pulled directly and
through `FramesAhead`; GPU time, kernels and launches per step.

Every case runs once to warm up (cudnn's autotuning, the style statistics), then is timed from the call to the
final frame. One case failing is reported and the others go on. Portrait mode needs dlib's face models; where they
are missing, the faces are read from benchmarks/landmarks.json (found on the CPU with the same code) and the face
search and the identity guard are left out of the time (said in the log).

    GPU_BENCH_DEVICE=cpu GPU_BENCH_SIZES=128 python benchmarks/gpu_bench.py   # a dry run of this script on a CPU
    GPU_BENCH_RECORDED_FACES=1 ...   # the dry run as a machine without dlib runs it (recorded faces, no guard)
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import sys
import time
import traceback
import warnings
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.speed import fwd_bwd_vs_sgemm
from style_core import preset, stylize
from style_core.networks import get_backbone, warm_up
from style_core.objective import clear_style_cache
from style_core.portrait import pipeline
from style_core.portrait.faces import Face, FaceError, find_faces
from style_core.streaming import FramesAhead

DATA = Path(os.environ.get("STYLE_CORE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
LANDMARKS = Path(__file__).with_name("landmarks.json")
CONTENT, STYLE = DATA / "077417.jpg", DATA / "Cartoons_00167_01.jpg"
DEVICE = os.environ.get("GPU_BENCH_DEVICE", "cuda")  # "cpu" for a dry run of this script
SIZES = [int(s) for s in os.environ.get("GPU_BENCH_SIZES", "512,1024").split(",")]
OUT = Path(os.environ["GPU_BENCH_OUT"]) if os.environ.get("GPU_BENCH_OUT") else None
RESULTS: list[dict] = []


def faces_from_file() -> None:
    """Use recorded landmarks when dlib is not installed: each recorded picture is told by its thumbnail (the
    photo and the style face have the same size), so the face search is left out of the timing."""
    recorded = json.loads(LANDMARKS.read_text())
    thumbs = {name: _thumb(Image.open(DATA / name)) for name in recorded}

    def lookup(img: Image.Image) -> list[Face]:
        same = [n for n, e in recorded.items() if tuple(e["size"]) == img.size]
        if not same:
            return []
        name = min(same, key=lambda n: float(np.abs(thumbs[n] - _thumb(img)).mean()))
        e = recorded[name]
        return [Face(tuple(e["box"]), np.array(e["landmarks"]), "recorded")]

    pipeline.find_faces = lookup
    pipeline.find_faces_any_roll = lookup  # the photo's faces (any roll) and the style's both come from the file
    pipeline.descriptor = lambda *a, **k: None  # the identity guard's embedding of the photo: dlib's
    pipeline.identity_distance = lambda *a, **k: None


def _thumb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB").resize((16, 16)), dtype=np.float32)


def sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def timed_run(name: str, size: int, **overrides) -> dict:
    """One warm-up run, then one timed run: wall time, time to the first frame, and when each scale ended."""
    cfg = preset(name, size=size, device=DEVICE, **overrides)
    for _ in stylize(CONTENT, STYLE, cfg):
        pass
    sync()
    start = time.perf_counter()
    first, frame, scale_ends = None, None, []
    for frame in stylize(CONTENT, STYLE, cfg):
        now = time.perf_counter() - start
        first = first if first is not None else now
        if frame.event in ("scale", "final"):
            scale_ends.append((frame.scale, frame.step, round(now, 3)))
    sync()
    total = time.perf_counter() - start
    return {"preset": name, "size": size, "seconds": round(total, 3), "first_frame_s": round(first, 3),
            "steps": frame.step, "loss": frame.losses.get("total"), "identity": frame.identity,
            "scale_ends": scale_ends, "message": frame.message, **{k: v for k, v in overrides.items()}}


def case(label: str, fn: Callable[[], dict | str | None]) -> dict | str | None:
    """Run one case; a failure is printed with its traceback and the run goes on."""
    print(f"--- {label}", flush=True)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fn()
        for w in {str(w.message) for w in caught}:
            print(f"    warning: {w}", flush=True)
    except Exception:
        traceback.print_exc()
        sys.stdout.flush()
        result = {"label": label, "error": traceback.format_exc(limit=3)}
    if isinstance(result, dict):
        result["label"] = label
        RESULTS.append(result)
        shown = {k: v for k, v in result.items() if k not in ("label", "scale_ends")}
        print(f"    {shown}", flush=True)
        if "scale_ends" in result:
            print(f"    scale ends (px, step, s): {result['scale_ends']}", flush=True)
    elif result is not None:
        print(result, flush=True)
    print(f"    [{time.perf_counter() - start:.1f} s]", flush=True)
    save()
    return result


def with_torch_lbfgs(size: int) -> dict:
    """Baseline in the same run: torch.optim.LBFGS (host syncs every step) instead of style_core.lbfgs; it cannot hand
    its curvature pairs down to the next scale, so each scale starts it cold."""
    from style_core import scale_run

    def torch_lbfgs(x, lr, history_size):
        return torch.optim.LBFGS([x], lr=lr, max_iter=1, history_size=history_size, tolerance_grad=0.0,
                                 tolerance_change=0.0)

    ours, scale_run.LBFGS = scale_run.LBFGS, torch_lbfgs
    try:
        return timed_run("balanced", size, warm_curvature=False, cuda_graphs=False)
    finally:
        scale_run.LBFGS = ours


def first_frame_cold(size: int, graphs: bool) -> dict:
    """The first frame with the style statistics not yet cached (a new style picture in the running app)."""
    clear_style_cache()
    cfg = preset("balanced", size=size, device=DEVICE, cuda_graphs=graphs)
    sync()
    start = time.perf_counter()
    frames = stylize(CONTENT, STYLE, cfg)
    next(frames)
    first = time.perf_counter() - start
    frames.close()
    return {"first_frame_cold_s": round(first, 3), "cuda_graphs": graphs}


def steady_steps(size: int, graphs: bool, update: bool = False, steps: int = 40) -> dict:
    """One scale at `size` (no coarse scales): wall time per step, GPU kernel time per step and launches per step,
    read from torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    cfg = preset("balanced", size=size, start_size=size, steps=steps, device=DEVICE, cuda_graphs=graphs,
                 cuda_graph_update=update, checkpoint_every=steps)
    for _ in stylize(CONTENT, STYLE, cfg):
        pass
    sync()
    start = time.perf_counter()
    for _ in stylize(CONTENT, STYLE, cfg):
        pass
    sync()
    wall = time.perf_counter() - start
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if DEVICE == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in stylize(CONTENT, STYLE, cfg):
            pass
        sync()
    kernel_us, kernels, launches = 0.0, 0, 0
    for e in prof.key_averages():
        if e.device_type == torch.autograd.DeviceType.CUDA:
            kernel_us += getattr(e, "self_device_time_total", 0) or getattr(e, "self_cuda_time_total", 0)
            kernels += e.count
        elif "LaunchKernel" in e.key or "GraphLaunch" in e.key or "LaunchCooperative" in e.key:
            launches += e.count
    return {"size": size, "cuda_graphs": graphs, "cuda_graph_update": update, "steps": steps,
            "wall_ms_per_step": round(1000 * wall / steps, 2),
            "gpu_kernel_ms_per_step": round(kernel_us / 1000 / steps, 2), "kernels_per_step": round(kernels / steps),
            "launch_calls_per_step": round(launches / steps)}


def portrait_profile(size: int, graphs: bool, **overrides) -> str:
    """Where a portrait run's host time goes (cProfile, cumulative), warm."""
    cfg = preset("pixar-portrait", size=size, device=DEVICE, cuda_graphs=graphs, **overrides)
    for _ in stylize(CONTENT, STYLE, cfg):
        pass
    sync()
    prof = cProfile.Profile()
    prof.enable()
    for _ in stylize(CONTENT, STYLE, cfg):
        pass
    sync()
    prof.disable()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(35)
    lines = [ln for ln in text.getvalue().splitlines() if ln.strip()]
    return "\n".join(lines[:60])


def out_of_memory_retry(gib: float = 3.0, size: int = 3072) -> dict:
    """Cap this process at `gib` of GPU memory and ask for a picture too big for it: the engine must retry
    smaller, with a warning, and still finish."""
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(gib * 2**30 / total)
    cfg = preset("balanced", size=size, steps=24, device=DEVICE)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = deque(stylize(CONTENT, STYLE, cfg), maxlen=1)[-1]
    torch.cuda.set_per_process_memory_fraction(1.0)
    return {"asked_px": size, "cap_gib": gib, "got_px": max(frame.image.size), "message": frame.message,
            "warnings": [str(w.message) for w in caught], "seconds": round(time.perf_counter() - start, 2)}


def save() -> None:
    if OUT is not None:
        OUT.mkdir(parents=True, exist_ok=True)
        name = torch.cuda.get_device_name() if DEVICE == "cuda" else DEVICE
        (OUT / "gpu_bench.json").write_text(json.dumps({"device": name, "torch": torch.__version__,
                                                        "results": RESULTS}, indent=1, default=str))


def ui_consumer(size: int, ahead: bool) -> dict:
    """The app's frame handling stood in for: every frame's preview encoded as a PNG (what gradio does with it)
    while the run waits (pulled directly) or paints on (`FramesAhead`, as the app runs it)."""
    cfg = preset("balanced", size=size, device=DEVICE)
    for _ in stylize(CONTENT, STYLE, cfg):
        pass
    sync()
    start, shown = time.perf_counter(), 0
    frames = stylize(CONTENT, STYLE, cfg)
    for frame in FramesAhead(frames) if ahead else frames:
        frame.image.save(io.BytesIO(), format="PNG")
        shown += 1
    sync()
    return {"size": size, "frames_ahead": ahead, "seconds": round(time.perf_counter() - start, 3),
            "frames_shown": shown}


def main() -> None:
    assert DEVICE != "cuda" or torch.cuda.is_available(), "no CUDA device"
    print(f"torch {torch.__version__}", flush=True)
    case("backbone", lambda: warm_up(preset(device=DEVICE)))
    portrait = {}
    try:
        if os.environ.get("GPU_BENCH_RECORDED_FACES"):  # a dry run of the path a machine without dlib takes
            raise FaceError("GPU_BENCH_RECORDED_FACES is set")
        find_faces(pipeline.load_image(CONTENT))
    except FaceError as exc:
        print(f"dlib unavailable ({exc}): portrait runs take the faces from {LANDMARKS.name} and run without the "
              "identity guard (identity_target 0)", flush=True)
        faces_from_file()
        portrait = {"identity_target": 0.0}
    small = SIZES[0]
    for graphs in (False, True):
        for size in SIZES:
            case(f"balanced {size} px, graphs {graphs}",
                 lambda s=size, g=graphs: timed_run("balanced", s, cuda_graphs=g))
    for size in SIZES:  # L-BFGS's update recorded too (cuda_graph_update): one launch a step
        case(f"balanced {size} px, graphs True, update recorded",
             lambda s=size: timed_run("balanced", s, cuda_graph_update=True))
    case(f"balanced {small} px, torch.optim.LBFGS, no graphs", lambda: with_torch_lbfgs(small))
    case(f"balanced {small} px, no frames", lambda: timed_run("balanced", small, checkpoint_every=100_000))
    for graphs, update in ((False, False), (True, False), (True, True)):
        case(f"pixar-portrait {small} px, graphs {graphs}, update recorded {update}",
             lambda g=graphs, u=update: timed_run("pixar-portrait", small, cuda_graphs=g, cuda_graph_update=u,
                                                  **portrait))
    for ahead in (False, True):
        case(f"balanced {small} px, every frame encoded, frames ahead {ahead}", lambda a=ahead: ui_consumer(small, a))
    for graphs in (False, True):
        case(f"first frame, cold style, graphs {graphs}", lambda g=graphs: first_frame_cold(small, g))
    for graphs, update in ((False, False), (True, False), (True, True)):
        for size in SIZES:
            case(f"steady steps {size} px, graphs {graphs}, update recorded {update}",
                 lambda s=size, g=graphs, u=update: steady_steps(s, g, u))
    case(f"portrait {small} px profile", lambda: portrait_profile(small, True, **portrait))

    def throughput() -> dict:
        net = get_backbone(preset(device=DEVICE), torch.device(DEVICE)).net
        return fwd_bwd_vs_sgemm(net, torch.device(DEVICE), size=min(512, max(SIZES)))

    case("backbone throughput", throughput)
    if DEVICE == "cuda":
        case("out-of-memory retry", out_of_memory_retry)
    save()


if __name__ == "__main__":
    main()
