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
from collections import deque
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.speed import fwd_bwd_vs_sgemm
from style_core import preset, stylize
from style_core.engine import get_backbone, warm_up
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
    pipeline.identity_distance = lambda *a, **k: None


def run(name: str, size: int) -> dict:
    cfg = preset(name, size=size, device=DEVICE)
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
            "steps": frame.step, "identity": frame.identity}


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
    results = [run(name, size) for name in ("balanced", "pixar-portrait") for size in SIZES]
    for r in results:
        print(f"{r['preset']:15s} {r['size']:5d} px  {r['seconds']:6.2f} s  first frame {r['first_frame_s']:.3f} s  "
              f"{r['steps']} steps  identity {r['identity']}")
    net = get_backbone(preset(device=DEVICE), torch.device(DEVICE)).net
    speed = fwd_bwd_vs_sgemm(net, torch.device(DEVICE), size=min(512, max(SIZES)))
    print(f"backbone fwd+bwd at 512 px (bf16 autocast): {speed['fwd_bwd_gflops']} GFLOP/s; "
          f"fp32 matmul {speed['sgemm_gflops']} GFLOP/s")
    name = torch.cuda.get_device_name() if DEVICE == "cuda" else DEVICE
    print(json.dumps({"device": name, "torch": torch.__version__, "results": results,
                      **speed}))


if __name__ == "__main__":
    main()
