"""One scale's optimization: the optimizer state, its steps (eager or replayed from a CUDA graph), and the
recovery from invalid or diverging steps."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from .config import StyleConfig
from .frames import LOSS_TERMS
from .graphs import StepGraph
from .lbfgs import LBFGS
from .objective import Objective


def graph_mode(config: StyleConfig, device: torch.device) -> str | None:
    """"cuda" where the step can be recorded as a CUDA graph: asked for, on CUDA, with the Gram loss (W2's
    eigenvalue solver reads its status back to the host, which a recording cannot contain)."""
    return "cuda" if config.cuda_graphs and device.type == "cuda" and config.style_loss == "gram" else None


class ScaleRun:
    """The optimizer state for one scale, with rollback on non-finite losses."""

    MAX_RECOVERIES = 3
    BLOW_UP = 3.0

    GRAPH_WARM_UP = 2  # eager steps per scale before recording a CUDA graph

    def __init__(
        self,
        objective: Objective,
        x: torch.Tensor,
        config: StyleConfig,
        graph_mode: str | None = None,
        inherited: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        self.objective, self.config = objective, config
        self.inherited = inherited  # L-BFGS pairs (moves, gradient changes) from the scale before, resized
        self.graph_mode = graph_mode  # "cuda", "simulate" (tests) or None
        self.graph: StepGraph | None = None
        self.warmup_left = self.GRAPH_WARM_UP
        self.side_stream: torch.cuda.Stream | None = None
        self.x = x.detach().clone().requires_grad_(True)
        self.good = self.x.detach().clone()  # the newest picture whose loss has been seen and found sound
        # The picture each step starts from: the step scores it (the closure runs before the move), so it is the one
        # a checkpoint's loss belongs to, not the picture after the move.
        self.before = self.x.detach().clone()
        self.lr_scale = 1.0
        self.ema: torch.Tensor | None = None
        self.ema_count = 0
        self.terms: dict[str, torch.Tensor] = {}
        self.history: list[float] = []
        self.failed = False
        self.done_scale = False
        self.recoveries = 0
        self.diverged = 0
        self.first_total: torch.Tensor | None = None  # the loss of the scale's starting picture
        self.message = ""
        self._make_optimizer()

    def _closure(self) -> torch.Tensor:
        if self.graph is not None:
            parts = self.graph.replay()  # the same buffer every step: views of it always show the latest
            self.terms = dict(zip(LOSS_TERMS, parts.unbind()))
        else:
            self.opt.zero_grad(set_to_none=True)
            # The loss sees the picture as it will be saved (clamped), so L-BFGS cannot profit from pixels out of
            # range; with Adam the iterate itself is clamped after each step, so this changes nothing there.
            total, terms = self.objective(self.x.clamp(0, 1))
            total.backward()
            self.terms = {k: v.detach() for k, v in terms.items()}
        if self.first_total is None:
            self.first_total = self.terms["total"].clone()
        return self.terms["total"]

    def step(self) -> None:
        if self.graph_mode is not None and self.graph is None:
            if self.warmup_left == 0:
                self._record()
            else:
                self.warmup_left -= 1
        if self.graph is not None and self._whole_step:
            self._replay_whole_step()
            return
        with self._warm_up_stream():
            self._step()

    @property
    def _whole_step(self) -> bool:
        """L-BFGS's update recorded with the loss's pass (`cuda_graph_update`: one launch a step); else the update
        (Adam's always) runs eagerly after the replayed pass."""
        return self.config.cuda_graph_update and isinstance(self.opt, LBFGS)

    def _record(self) -> None:
        """Record this scale's step as a CUDA graph (after warm-up steps: cudnn's autotuning, lazy handles, and for
        L-BFGS one eager run of the recordable update): the loss's pass and, for L-BFGS, the update too."""

        whole = self._whole_step

        def loss_parts(x: torch.Tensor) -> torch.Tensor:
            if whole:  # else `_step` keeps the picture this step scores before the replay (see `check_finite`)
                self.before.copy_(x.detach())
            return self.objective.parts(x.clamp(0, 1))

        update = (lambda: self.opt.static_step(self.x.grad)) if whole else None
        try:
            if update is not None and not self.opt.static_prepared:
                raise RuntimeError("L-BFGS's recordable update was not prepared by a warm-up step")
            self.graph = StepGraph(loss_parts, self.x, simulate=self.graph_mode == "simulate", update=update)
        except Exception as exc:  # an operation that cannot be recorded: go on as before, and say so once
            warnings.warn(f"CUDA graph recording failed ({exc}); running without graphs", RuntimeWarning, stacklevel=3)
            self.graph_mode, self.graph = None, None
            self.x.grad = None

    def _replay_whole_step(self) -> None:
        parts = self.graph.replay()
        self.opt.count += 1  # the device's count moved too, inside the graph
        self.terms = dict(zip(LOSS_TERMS, parts.unbind()))

    @contextmanager
    def _warm_up_stream(self) -> Iterator[None]:
        """Warm-up steps before recording run on a side stream, as CUDA graphs require."""
        if self.graph_mode != "cuda" or self.graph is not None:
            yield
            return
        if self.side_stream is None:
            self.side_stream = torch.cuda.Stream()
        side = self.side_stream
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            yield
        torch.cuda.current_stream().wait_stream(side)

    def _make_optimizer(self) -> None:
        if self.graph is not None and self._whole_step:
            # The recorded step holds the old optimizer's buffers: record again for the new one, after its warm-up.
            self.graph, self.warmup_left = None, self.GRAPH_WARM_UP
            self.x.grad = None
        if self.config.optimizer == "lbfgs":
            self.opt: LBFGS | torch.optim.Optimizer = LBFGS(
                self.x, lr=self.lr_scale, history_size=self.config.lbfgs_history,
                smoothing=self.config.lbfgs_smoothing,
            )
            # A restart after a bad step forgets the inherited pairs too: they may be what went wrong.
            if self.inherited is not None and self.lr_scale == 1.0:
                self.opt.seed(*self.inherited)
            self.inherited = None  # held once: a restart starts cold
        else:
            self.opt = torch.optim.Adam([self.x], lr=self.config.lr * self.lr_scale, betas=(0.9, 0.99))

    def _step(self) -> None:
        self.before.copy_(self.x.detach())
        if self.graph_mode is not None and self._whole_step and self.opt.prev_grad is not None:
            # The warm-up step before recording runs the recordable update eagerly (its handles and workspaces).
            self.opt.prepare_static()
            self._closure()
            self.opt.static_step(self.x.grad)
            self.opt.count += 1
        elif self.config.optimizer == "lbfgs":
            self.opt.step(self._closure)
        else:
            self._closure()
            self.opt.step()
        with torch.no_grad():
            if self.config.optimizer == "adam":
                self.x.clamp_(0, 1)  # L-BFGS is left unclamped: clamping corrupts its curvature pairs
            if self.config.optimizer == "adam" and self.config.ema_decay > 0:
                self.ema_count += 1
                if self.ema is None:
                    self.ema = self.x.detach().clone()
                else:
                    # Bias-corrected average: early iterates fade out as in crowsonkb's EMA.
                    d = min(self.config.ema_decay, (1 + self.ema_count) / (10 + self.ema_count))
                    self.ema.mul_(d).add_(self.x.detach(), alpha=1 - d)

    def check_finite(self) -> None:
        """At a checkpoint: if the last loss is finite and not diverging, the picture it scored is the new good one;
        else roll back to the good one and shrink the step size.

        The last loss is that of the picture the last step started from (the step scores, then moves), so that is
        the picture kept as good; the move after it is judged at the next checkpoint, or by `settle`. (Keeping the
        picture after the move, unscored, made a rollback return to the very picture that had blown up: a 160 px
        scale of speed.py's objective went from 1.7e8 to 1.2e10 in one step and ended there.) Diverging: the loss
        above BLOW_UP times the best seen at this scale (from its starting picture on). L-BFGS without a line search
        can take a wild step when its curvature pairs go stale (pixels pushed past the clamp have no gradient); left
        alone such a step wrecks the picture, so it is undone like a NaN."""
        total = self.terms.get("total")
        finite = self._finite(total)
        if finite and float(total) <= self.BLOW_UP * self._best():
            self.history.append(float(total))
            self.good = self.before.detach().clamp(0, 1)
            return
        self._roll_back()
        if finite:  # diverged: restart from the last good picture with a fresh, shorter-stepping optimizer
            self.diverged += 1
            self.lr_scale *= 0.5
            self._make_optimizer()
            self.done_scale = self.diverged > self.MAX_RECOVERIES  # give up on this scale, keep its last good picture
            return
        self.recoveries += 1
        if self.recoveries > self.MAX_RECOVERIES:
            self.failed = True
            self.message = "the optimization kept producing invalid values; stopped at the last good picture"
            return
        self.lr_scale *= 0.5
        self._make_optimizer()
        self.message = f"recovered from an invalid step (step size now x{self.lr_scale:g})"

    def settle(self) -> None:
        """At the end of the scale: score the last move, which no step has scored (one pass, no gradient), and go
        back to the good picture if it is not finite or diverged, so a wild last step is never the scale's result
        nor the next scale's start."""
        if self.failed:
            return
        with torch.no_grad():
            total, _ = self.objective(self.x.detach().clamp(0, 1))
        if not (self._finite(total) and float(total) <= self.BLOW_UP * self._best()):
            self._roll_back()

    def _finite(self, total: torch.Tensor | None) -> bool:
        return total is not None and bool(torch.isfinite(total)) and bool(torch.isfinite(self.x).all())

    def _roll_back(self) -> None:
        """Back to the good picture; the average of iterates (Adam's EMA) starts again from there."""
        with torch.no_grad():
            self.x.copy_(self.good)
        self.ema, self.ema_count = None, 0

    def _best(self) -> float:
        """The lowest loss seen at this scale, its starting picture's included (inf when none is finite: a NaN start
        is the NaN path's job)."""
        first = float(self.first_total) if self.first_total is not None else math.inf
        return min([*self.history, first if math.isfinite(first) else math.inf])

    def converged(self, tolerance: float) -> bool:
        h = self.history
        if len(h) >= 2 and h[-2] > 0 and (h[-2] - h[-1]) / h[-2] < tolerance:
            self.done_scale = True
        return self.done_scale

    def curvature_pairs(self, newest: int | None = None) -> tuple[torch.Tensor, torch.Tensor] | None:
        """L-BFGS's stored pairs (the `newest` few), oldest first (None: another optimizer, none yet, or a failed
        scale)."""
        if isinstance(self.opt, LBFGS) and self.opt.count > 0 and not self.failed:
            return self.opt.pairs(newest)
        return None

    def result(self) -> torch.Tensor:
        if self.failed or not torch.isfinite(self.x).all():
            return self.good
        return self.ema if self.ema is not None else self.x.detach().clamp(0, 1)

    def read_losses(self) -> dict[str, float]:
        return read_terms(self.terms)


def read_terms(terms: dict[str, torch.Tensor]) -> dict[str, float]:
    """Loss terms as numbers, the non-finite left out: one read-back from the device, not one per term."""
    if not terms:
        return {}
    values = torch.stack(list(terms.values())).tolist()
    return {k: v for k, v in zip(terms, values) if math.isfinite(v)}
