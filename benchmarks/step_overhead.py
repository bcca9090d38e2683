"""Host cost of one optimizer step, with the arithmetic taken away: what a GPU run waits on.

On a GPU the default preset is bound by the host, not the device (H200, 512 px: ~4 ms of GPU work per step
under ~9 ms of host time), and the host's cost is one dispatch (and on CUDA one or more kernel launches) per
operator. This runs the balanced preset's loss and L-BFGS on a VGG19-shaped network 64x thinner at 32 px on
one CPU thread, where the arithmetic is negligible, and prints the operators per step (all, and those that are
not views, i.e. that launch work) and the host milliseconds per step.

    python benchmarks/step_overhead.py                     # this checkout
    python benchmarks/step_overhead.py --src /tmp/base     # another checkout (git worktree add /tmp/base REV)

The operator counts are exact and machine-independent; the milliseconds vary by several tens of per cent on a
shared virtual machine, so compare checkouts in the same session, alternating, and trust the counts first.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

VIEWS = {
    f"aten::{v}"
    for v in "reshape view t numpy_T select slice detach unsqueeze squeeze expand permute as_strided alias "
    "transpose unbind split _unsafe_view to broadcast_tensors lift_fresh".split()
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", default=str(Path(__file__).resolve().parents[1]), help="checkout to measure")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, args.src)

    import torch
    from torch.profiler import ProfilerActivity, profile

    from style_core import preset
    from style_core.backbone import random_backbone
    from style_core.objective import Objective
    from style_core.scale_run import ScaleRun

    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = preset("balanced", device="cpu")
    net = random_backbone("vgg19", list(dict.fromkeys((*cfg.content_layers, *cfg.style_layers))), width_divisor=64)
    content, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    run = ScaleRun(Objective(net, cfg, content, [style], ["style"], [1.0]), content, cfg)
    for _ in range(60):  # fill the L-BFGS history: the steady state
        run.step()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(args.steps):
            run.step()
        best = min(best, (time.perf_counter() - start) / args.steps)

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(10):
            run.step()

    def top_level(event) -> bool:
        parent = event.cpu_parent
        while parent is not None:
            if parent.name.startswith("aten::"):
                return False
            parent = parent.cpu_parent
        return True

    ops = [e.name for e in prof.events() if e.name.startswith("aten::") and top_level(e)]
    work = [n for n in ops if n not in VIEWS]
    result = {"src": args.src, "ops_per_step": len(ops) / 10, "non_view_ops_per_step": len(work) / 10,
              "host_ms_per_step": round(best * 1000, 3)}
    print(f"{args.src}: {result['ops_per_step']:.0f} operators per step, {result['non_view_ops_per_step']:.0f} "
          f"of them not views; {result['host_ms_per_step']:.2f} host ms per step (best of 5 x {args.steps})")
    for name, count in collections.Counter(work).most_common(12):
        print(f"  {count / 10:5.1f}  {name}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
