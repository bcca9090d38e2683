"""One scale's loss and gradient recorded once as a CUDA graph and replayed: a step becomes one launch.

On a GPU the default preset is bound by the host, not the device: a step is a few hundred operators, each a
Python dispatch and a kernel launch (H200, 512 px: ~4 ms of GPU work per step under ~9 ms of host time). Within
a scale nothing about the step's kernels changes (the picture keeps its storage, the targets and masks are
fixed), so the forward and backward pass can be recorded once and replayed with one call.

A replay writes into the same tensors every time: the loss parts and the gradient are overwritten by the next
step, so whoever keeps one across steps must copy it (the L-BFGS keeps its own copy of the last gradient, the
scale's run clones its first loss). `simulate=True` gives the same contract on any device by running the pass
eagerly and copying into fixed buffers; the tests use it to hold the engine to that contract on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

LossParts = Callable[[torch.Tensor], torch.Tensor]  # picture -> (content, style, tv, total)


class StepGraph:
    """The recorded pass for one picture tensor `x` (a leaf that requires grad, updated in place)."""

    def __init__(self, loss_parts: LossParts, x: torch.Tensor, simulate: bool = False) -> None:
        self.loss_parts, self.x = loss_parts, x
        self.graph: torch.cuda.CUDAGraph | None = None
        x.grad = None  # the recorded backward must allocate the gradient itself (inside the graph's memory)
        if simulate:
            self.parts = self._eager().clone()
            self.grad = x.grad.clone()
        else:
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):  # a web server has other threads
                parts = loss_parts(x)
                parts[3].backward()
            self.parts, self.grad = parts.detach(), x.grad
        x.grad = self.grad

    def _eager(self) -> torch.Tensor:
        self.x.grad = None
        parts = self.loss_parts(self.x)
        parts[3].backward()
        return parts.detach()

    def replay(self) -> torch.Tensor:
        """Run the pass for the picture as it is now; returns the parts and leaves the gradient in `x.grad`."""
        if self.graph is not None:
            self.graph.replay()
        else:
            parts = self._eager()
            self.parts.copy_(parts)
            self.grad.copy_(self.x.grad)
        self.x.grad = self.grad
        return self.parts
