"""Print sizes: peak memory (read from the OS), time, the memory guard's estimate, and 100 % crops across tile
borders.

Each run is a child process (`--child`) that takes the command line's flags (the same parser as
`python -m style_core`), paints, and reports per-scale times and the guard's plan as JSON; the parent reads the
child's peak resident memory with os.wait4 (ru_maxrss of that child alone) and keeps children under an address
space limit, so a wrong estimate fails an allocation instead of waking the kernel's OOM killer.

    python benchmarks/print.py run --size 4096 [--max-memory-gb 4] [--crops] [-- EXTRA CLI FLAGS]
    python benchmarks/print.py estimate --sizes 512 1024 1448       # guard's estimate against measured peaks
    python benchmarks/print.py compare --size 2048                  # time per megapixel, tiled against untiled
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "out"
CONTENT, STYLE = DATA / "brad_pitt.jpg", DATA / "starry_night.jpg"
AS_LIMIT = 22 * 1024**3  # address space per child: never near the machine's 24 GB of RAM


def child(argv: list[str]) -> None:
    """Paint as the CLI would, then print one JSON line: the guard's plan, per-scale times, the calibration."""
    import torch

    from style_core.api import plan_memory, stylize
    from style_core.cli import build_parser, config_from_args
    from style_core.images import load_image, save_image
    from style_core.networks import warm_up
    from style_core.timing import estimate_seconds, seconds_per_megapixel_step

    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    content, styles = load_image(args.content), [load_image(s) for s in args.styles]
    warm_up(config)
    calibration = seconds_per_megapixel_step(config, torch.device("cpu"))
    plan = plan_memory(content, config)
    predicted = estimate_seconds(plan.config, (content.height, content.width), calibration)
    scales, frame, start = [], None, time.perf_counter()
    for frame in stylize(content, styles, config):
        if frame.event in ("scale", "final"):
            scales.append({"side": frame.scale, "end_s": round(frame.elapsed, 2), "step": frame.step})
    save_image(frame.image, args.output)
    report = {
        "plan": plan.describe(),
        "estimate_gb": plan.estimate / 1024**3,
        "held_gb": plan.held / 1024**3,
        "tile_above": plan.config.tile_above,
        "tile_size": plan.config.tile_size,
        "tile_overlap": plan.config.tile_overlap,
        "size": [frame.image.width, frame.image.height],
        "wall_s": round(time.perf_counter() - start, 1),
        "scales": scales,
        "s_per_mp_step_at_512": round(calibration, 3),
        "predicted_s": round(predicted, 1),
        "message": frame.message,
    }
    print("REPORT " + json.dumps(report), flush=True)


def measured(cli_args: list[str]) -> dict:
    """Run a child; its report plus its own peak RSS (GB) from the kernel."""
    cmd = [sys.executable, __file__, "--child", str(CONTENT), str(STYLE), "--quiet", *cli_args]

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))

    log = OUT / "child.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, preexec_fn=limit)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text()
    lines = [ln for ln in text.splitlines() if ln.startswith("REPORT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"child failed ({proc.returncode}): {' '.join(cmd)}\n{text[-3000:]}")
    report = json.loads(lines[-1][len("REPORT ") :])
    report["peak_rss_gb"] = usage.ru_maxrss * 1024 / 1024**3
    report["command"] = " ".join(["python -m style_core", "CONTENT", "STYLE", *cli_args])
    return report


def crops(path: Path, report: dict, name: str, half: int = 256) -> list[Path]:
    """100 % crops (2*half px square) centred on the last scale's tile borders: a vertical cut, a horizontal
    cut and a corner where four tiles meet."""
    from PIL import Image

    from style_core.tiling import tile_grid

    img = Image.open(path)
    w, h = img.size
    tiles = tile_grid(h, w, report["tile_size"], report["tile_overlap"])
    xs = sorted({t.left for t in tiles if t.left > 0})
    ys = sorted({t.top for t in tiles if t.top > 0})
    spots = []
    if xs:
        spots.append(("vcut", xs[0], h // 2 if not ys else (ys[0] // 2)))
    if ys:
        spots.append(("hcut", (xs[0] // 2) if xs else w // 2, ys[0]))
    if xs and ys:
        spots.append(("corner", xs[len(xs) // 2], ys[len(ys) // 2]))
    saved = []
    for label, cx, cy in spots:
        box = (max(0, cx - half), max(0, cy - half), min(w, cx + half), min(h, cy + half))
        out = OUT / f"{name}_crop_{label}_{cx}x{cy}.png"
        img.crop(box).save(out)
        saved.append(out)
    return saved


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["run", "estimate", "compare"])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 1448])
    parser.add_argument("--max-memory-gb", type=float)
    parser.add_argument("--crops", action="store_true")
    args, extra = parser.parse_known_args()  # the rest: more flags for the CLI
    args.extra = [a for a in extra if a != "--"]
    OUT.mkdir(parents=True, exist_ok=True)
    cap = ["--max-memory-gb", str(args.max_memory_gb)] if args.max_memory_gb else []
    if args.mode == "run":
        name = f"print_{args.size}" + (f"_cap{args.max_memory_gb:g}" if cap else "")
        out = OUT / f"{name}.png"
        report = measured(["-o", str(out), "--size", str(args.size), *cap, *args.extra])
        if args.crops:
            report["crops"] = [str(p.relative_to(ROOT)) for p in crops(out, report, name)]
        print(json.dumps(report, indent=1))
    elif args.mode == "estimate":
        for size in args.sizes:
            out = OUT / f"estimate_{size}.png"
            r = measured(["-o", str(out), "--size", str(size), *cap, *args.extra])
            predicted = r["held_gb"] + r["estimate_gb"]
            print(
                f"size {size}: peak RSS {r['peak_rss_gb']:.2f} GB measured, {predicted:.2f} GB estimated "
                f"({r['held_gb']:.2f} held + {r['estimate_gb']:.2f} run; {r['plan']}); {r['wall_s']} s",
                flush=True,
            )
    else:
        for label, flags in (("tiled", []), ("untiled", ["--tile-above", "8192"])):
            out = OUT / f"compare_{args.size}_{label}.png"
            r = measured(["-o", str(out), "--size", str(args.size), *cap, *flags, *args.extra])
            last, before = r["scales"][-1], r["scales"][-2]
            w, h = r["size"]
            steps = last["step"] - before["step"]
            seconds = last["end_s"] - before["end_s"]
            print(
                f"{label}: last scale {last['side']} px ({w}x{h}, {steps} steps) took {seconds:.1f} s = "
                f"{seconds / steps / (w * h / 1e6):.2f} s per megapixel-step; peak RSS {r['peak_rss_gb']:.2f} GB; "
                f"{r['plan']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
