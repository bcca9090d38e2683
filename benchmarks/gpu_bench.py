"""Timings on a GPU (run through benchmarks/gpu.sh): balanced and portrait presets at 512 and 1024 px.

Each case runs once to warm up (cudnn autotuning, style targets), then is timed from the call to the final
frame. Portrait mode needs dlib's face models; where they are missing, the faces are read from
benchmarks/landmarks.json (found on the CPU with the same code) and the face search is left out of the time.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from collections import deque
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.speed import fwd_bwd_vs_sgemm
from style_core import preset, stylize
from style_core.networks import get_backbone, warm_up
from style_core.portrait import pipeline
from style_core.portrait.faces import Face, FaceError, find_faces

DATA = Path(os.environ.get("STYLE_CORE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
LANDMARKS = Path(__file__).with_name("landmarks.json")
CONTENT, STYLE = DATA / "077417.jpg", DATA / "Cartoons_00167_01.jpg"
DEVICE = os.environ.get("GPU_BENCH_DEVICE", "cuda")  # "cpu" for a dry run of this script
SIZES = [int(s) for s in os.environ.get("GPU_BENCH_SIZES", "512,1024").split(",")]


def faces_from_file() -> None:
    """Use recorded landmarks when dlib is not installed (face search excluded from the timing)."""
    recorded = json.loads(LANDMARKS.read_text())

    def lookup(img):
        for entry in recorded.values():
            if tuple(entry["size"]) == img.size:
                return [Face(tuple(entry["box"]), np.array(entry["landmarks"]), "recorded")]
        return []

    pipeline.find_faces = lookup
    pipeline.find_faces_any_roll = lookup  # the photo's faces (any roll) and the style's both come from the file
    pipeline.identity_distance = lambda *a, **k: None


def run(name: str, size: int, net: str = "vgg16 (HED weights)", **overrides) -> dict:
    cfg = preset(name, size=size, device=DEVICE, **overrides)
    deque(stylize(CONTENT, STYLE, cfg), maxlen=1)  # warm-up
    sync()
    start = time.perf_counter()
    frames = stylize(CONTENT, STYLE, cfg)
    frame = next(frames)
    first = time.perf_counter() - start
    frame = (deque(frames, maxlen=1) or [frame])[-1]
    sync()
    total = time.perf_counter() - start
    return {"preset": name, "size": size, "seconds": round(total, 2), "first_frame_s": round(first, 3),
            "steps": frame.step, "identity": frame.identity, "backbone": net,
            "loss": round(frame.losses.get("total", float("nan")), 1)}


def with_torch_lbfgs(size: int, weights: str) -> dict:
    """Baseline in the same run: torch.optim.LBFGS (host syncs every step) instead of style_core.lbfgs."""
    from style_core import scale_run

    def torch_lbfgs(x, lr, history_size):
        return torch.optim.LBFGS([x], lr=lr, max_iter=1, history_size=history_size, tolerance_grad=0.0,
                                 tolerance_change=0.0)

    ours, scale_run.LBFGS = scale_run.LBFGS, torch_lbfgs
    try:
        return run("balanced", size, "vgg19 + torch LBFGS", weights=weights)
    finally:
        scale_run.LBFGS = ours


def show(r: dict) -> dict:
    print(f"{r['preset']:15s} {r['backbone']:22s} {r['size']:5d} px  {r['seconds']:6.2f} s  "
          f"first frame {r['first_frame_s']:.3f} s  {r['steps']} steps  loss {r['loss']}  identity {r['identity']}",
          flush=True)
    return r


def random_vgg19_file(path: Path = Path("/tmp/vgg19_random.safetensors")) -> Path:
    """VGG19-shaped He-initialised weights: the default backbone's timing (fixed step counts) does not depend
    on the weights' values, and the real VGG19 file cannot be fetched on an offline machine."""
    from safetensors.torch import save_file

    from style_core.backbone import WIDTHS
    from style_core.weights import BLOCK_SIZES, CONV_INDICES

    widths = [w for w, n in zip(WIDTHS, BLOCK_SIZES["vgg19"]) for _ in range(n)]
    state, c_in = {}, 3
    for index, c_out in zip(CONV_INDICES["vgg19"], widths):
        state[f"features.{index}.weight"] = torch.randn(c_out, c_in, 3, 3) * (2 / (9 * c_in)) ** 0.5
        state[f"features.{index}.bias"] = torch.zeros(c_out)
        c_in = c_out
    save_file(state, str(path))
    return path


def profile_steps(size: int = 512, steps: int = 30) -> str:
    """Where the GPU time goes in a plain run: the top operators by CUDA time."""
    from torch.profiler import ProfilerActivity, profile

    cfg = preset("balanced", size=size, start_size=size, steps=steps, device=DEVICE)
    deque(stylize(CONTENT, STYLE, cfg), maxlen=1)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        deque(stylize(CONTENT, STYLE, cfg), maxlen=1)
        sync()
    kernels = sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)
    table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=15, max_name_column_width=40)
    return f"{table}\nGPU kernels per step: {kernels / steps:.0f}"


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
            "warnings": [str(w.message) for w in caught], "seconds": round(time.perf_counter() - start, 2),
            "max_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}


def sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    assert DEVICE != "cuda" or torch.cuda.is_available(), "no CUDA device"
    torch.backends.cudnn.benchmark = True
    print(warm_up(preset(device=DEVICE)))
    try:
        find_faces(pipeline.load_image(CONTENT))
    except FaceError as exc:
        print(f"dlib unavailable ({exc}); portrait runs use {LANDMARKS.name}")
        faces_from_file()
    results = []
    if DEVICE == "cuda":  # the default backbone, VGG19, at the default preset
        vgg19 = str(random_vgg19_file())
        results += [show(run("balanced", size, "vgg19 (random weights)", weights=vgg19)) for size in SIZES]
        results.append(show(with_torch_lbfgs(SIZES[0], vgg19)))
        # The same runs with each scale's step recorded as a CUDA graph (config.cuda_graphs, off by default until
        # timed here): the comparison that decides whether it becomes the default.
        results += [show(run("balanced", size, "vgg19 + CUDA graphs", weights=vgg19, cuda_graphs=True))
                    for size in SIZES]
    results += [show(run(name, size)) for name in ("balanced", "pixar-portrait") for size in SIZES]
    if DEVICE == "cuda":
        results += [show(run("pixar-portrait", size, "vgg16 + CUDA graphs", cuda_graphs=True)) for size in SIZES]
    net = get_backbone(preset(device=DEVICE), torch.device(DEVICE)).net
    speed = fwd_bwd_vs_sgemm(net, torch.device(DEVICE), size=min(512, max(SIZES)))
    print(f"backbone fwd+bwd at 512 px (bf16 autocast): {speed['fwd_bwd_gflops']} GFLOP/s; "
          f"fp32 matmul {speed['sgemm_gflops']} GFLOP/s")
    if DEVICE == "cuda":
        print(profile_steps())
    oom = out_of_memory_retry() if DEVICE == "cuda" else None
    print(f"out-of-memory retry: {oom}")
    name = torch.cuda.get_device_name() if DEVICE == "cuda" else DEVICE
    print(json.dumps({"device": name, "torch": torch.__version__, "results": results, **speed,
                      "oom_retry": oom}))


if __name__ == "__main__":
    main()
