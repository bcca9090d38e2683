"""One scale's step recorded once as a CUDA graph and replayed: a step becomes one launch.

On a GPU the default preset is bound by the host, not the device: a step is a few hundred operators, each a
Python dispatch and a kernel launch (H200, 512 px, eager: 2.8 ms of GPU work per step under 9 ms of host time).
Within a scale nothing about the step's kernels changes (the picture keeps its storage, the targets and masks are
fixed, L-BFGS's buffers keep their shapes: `LBFGS.static_step`), so the loss's forward and backward pass and the
optimizer's update can be recorded once and replayed with one call.

A replay writes into the same tensors every time: the loss parts and the gradient are overwritten by the next
step, so whoever keeps one across steps must copy it (an eagerly run L-BFGS keeps its own copy of the last
gradient, the scale's run clones its first loss). `simulate=True` gives the same contract on any device by running
the pass eagerly and copying into fixed buffers; the tests use it to hold the engine to that contract on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

LossParts = Callable[[torch.Tensor], torch.Tensor]  # picture -> (content, style, tv, total)


class StepGraph:
    """The recorded pass for one picture tensor `x` (a leaf that requires grad, updated in place): `loss_parts`,
    its backward pass, then `update` (the optimizer's move, reading `x.grad`; None: the caller moves)."""

    def __init__(
        self,
        loss_parts: LossParts,
        x: torch.Tensor,
        simulate: bool = False,
        update: Callable[[], None] | None = None,
    ) -> None:
        self.loss_parts, self.x, self.update = loss_parts, x, update
        self.graph: torch.cuda.CUDAGraph | None = None
        self.parts: torch.Tensor | None = None
        self.grad: torch.Tensor | None = None
        x.grad = None  # the recorded backward must allocate the gradient itself (inside the graph's memory)
        if not simulate:
            # Recording runs nothing: the first replay makes the first recorded step.
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):  # a web server has other threads
                parts = self._pass()
            self.parts, self.grad = parts.detach(), x.grad
            x.grad = self.grad

    def _pass(self) -> torch.Tensor:
        parts = self.loss_parts(self.x)
        parts[3].backward()
        if self.update is not None:
            self.update()
        return parts.detach()

    def replay(self) -> torch.Tensor:
        """Run the step for the picture as it is now; returns the parts and leaves the gradient in `x.grad`."""
        if self.graph is not None:
            self.graph.replay()
        else:
            self.x.grad = None
            parts, grad = self._pass(), self.x.grad
            if self.parts is None:
                self.parts, self.grad = parts.clone(), grad.clone()
            else:
                self.parts.copy_(parts)
                self.grad.copy_(grad)
        self.x.grad = self.grad
        return self.parts
