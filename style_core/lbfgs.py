"""L-BFGS for one picture tensor, with no host synchronisation and a fixed, small number of kernels per step.

torch.optim.LBFGS reads values back to Python several times per step (the loss, the curvature test, and one
`.item()` per history entry through `add_(alpha=tensor)`) and launches four small kernels per history entry,
so on a GPU each step waits for the device and the launch queue runs dry (H200, 512 px: 11 ms of CPU time per
step for 4 ms of GPU work). Here every decision stays on the device (`torch.where`), and the two-loop
recursion is written as two small triangular solves over the history's inner products, so a step costs a few
matrix-vector products whatever the history size. The update is the same as torch's L-BFGS with `max_iter=1`
and no line search.

The two-loop recursion (oldest pair i = 0 .. newest k-1, rho_i = 1 / y_i.s_i), with q0 = -g:
    alpha_i = rho_i s_i.(q0 - sum_{j>i} alpha_j y_j)   ->  (I + diag(rho) triu(SY, 1)) alpha = rho * (S q0)
    r0 = h (q0 - Y^T alpha);  c_i = alpha_i - beta_i,  beta_i = rho_i y_i.(r0 + sum_{j<i} c_j s_j)
                                                         ->  (I + diag(rho) tril(SY^T, -1)) c = alpha - rho * (Y r0)
    direction = r0 + S^T c
where SY[i, j] = s_i . y_j is kept up to date with two matrix-vector products per step.

`smoothing` > 0 replaces the initial inverse Hessian h I by h M^-1, with M = 1 + smoothing * (the picture's discrete
Laplacian), applied per channel with an FFT (`SmoothingFilter`), and h = s.y / (y.M^-1 y) (preconditioned L-BFGS,
Nocedal & Wright 7.2). A total-variation term makes a picture's curvature grow with spatial frequency, so a plain first
guess moves the fine detail too far and the broad colour fields too little, and the history has to learn that; a
first guess shaped like it leaves the history the rest. On speed.py's objective (its TV weight is the classic 100 in
pixel units), 256 px: 34-35 full-size frames before the first at the seed recipe's objective with smoothing 4-16,
47 without (docs/PERFORMANCE.md). 0 is plain L-BFGS, to the bit.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class SmoothingFilter:
    """v -> M^-1 v for a picture-shaped vector: M = 1 + strength * L, L the 5-point Laplacian with wrap-around edges
    (diagonal in the Fourier basis, so the inverse is one division per frequency). The wrap-around only shapes the
    first guess: any symmetric positive definite M leaves L-BFGS's update valid."""

    def __init__(self, shape: torch.Size, strength: float, device: torch.device, dtype: torch.dtype) -> None:
        height, width = shape[-2], shape[-1]
        # Made on the CPU in float64 (not every device has it), then moved once.
        fy = 2 - 2 * torch.cos(2 * torch.pi * torch.arange(height, dtype=torch.float64) / height)
        fx = 2 - 2 * torch.cos(2 * torch.pi * torch.arange(width // 2 + 1, dtype=torch.float64) / width)
        self.shape = shape
        response = (1.0 / (1.0 + strength * (fy[:, None] + fx[None, :]))).to(device, dtype)
        # Kept complex (zero imaginary part: the same products to the bit): a real factor would be converted to
        # complex at every call (256 px: 1.8 ms a pass, 0.5 ms with this).
        self.response = torch.complex(response, torch.zeros_like(response))

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        spectrum = torch.fft.rfft2(v.view(self.shape))
        return torch.fft.irfft2(spectrum * self.response, s=self.shape[-2:]).reshape(-1)


class LBFGS:
    """Minimise `closure()` over one tensor; `step` evaluates the closure once and moves the tensor once."""

    def __init__(
        self, param: torch.Tensor, lr: float = 1.0, history_size: int = 50, smoothing: float = 0.0
    ) -> None:
        self.param, self.lr, self.m = param, lr, history_size
        # The initial inverse Hessian's shape (module docstring): None is the identity. Needs a picture (..., H, W).
        self.smooth = SmoothingFilter(param.shape, smoothing, param.device, param.dtype) if smoothing > 0 else None
        dev, dt = param.device, param.dtype
        self.s_rows = torch.zeros(history_size, param.numel(), device=dev, dtype=dt)  # moves, in a ring
        self.y_rows = torch.zeros_like(self.s_rows)  # the gradient's change over each move
        self.rho = torch.zeros(history_size, device=dev, dtype=dt)  # 0 for pairs without positive curvature
        self.sy = torch.zeros(history_size, history_size, device=dev, dtype=dt)  # sy[a, b] = s_a . y_b
        self.h_diag = torch.ones((), device=dev, dtype=dt)
        self.count = 0  # pairs stored so far
        # Oldest-to-newest order of the ring's rows for each position of its head, made once (no per-step uploads).
        self._orders = [torch.roll(torch.arange(history_size, device=dev), -h) for h in range(history_size)]
        self.prev_grad: torch.Tensor | None = None
        self.last_move: torch.Tensor | None = None
        self._count_t: torch.Tensor | None = None  # `static_step`'s count of stored pairs, on the device

    @property
    def static_prepared(self) -> bool:
        """Whether `prepare_static` has run: `static_step` may be called (or recorded)."""
        return self._count_t is not None

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.param.grad = None

    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:
        with torch.enable_grad():
            loss = closure()
        grad = self.param.grad.detach().reshape(-1)
        if self.prev_grad is None and self.count > 0:
            direction = self._two_loop(grad)  # pairs handed down (`seed`): a full quasi-Newton first step
            scale = torch.full((), self.lr, device=grad.device, dtype=grad.dtype)
        elif self.prev_grad is None:
            direction = grad.neg()
            # First step: at most one unit of pixel change in total, as torch's L-BFGS does.
            scale = torch.clamp(1.0 / grad.abs().sum(), max=1.0) * self.lr
        else:
            self._remember(grad - self.prev_grad, self.last_move)
            direction = self._two_loop(grad)
            scale = torch.full((), self.lr, device=grad.device, dtype=grad.dtype)
        # Not a descent direction (curvature gone wrong): take the plain gradient step instead.
        descent = grad.dot(direction) < 0
        direction = torch.where(descent, direction, grad.neg())
        move = direction * scale
        with torch.no_grad():
            self.param.add_(move.view_as(self.param))
        # A copy: the caller may reuse its gradient buffer (a replayed CUDA graph overwrites it every step).
        self.prev_grad, self.last_move = grad.clone(), move
        return loss

    def _ring_order(self) -> torch.Tensor | None:
        """Oldest-to-newest row indices once the ring has wrapped; None while rows 0..count-1 are already in order."""
        return self._orders[self.count % self.m] if self.count >= self.m else None

    def pairs(self, newest: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The stored (move, gradient change) pairs, oldest first, as (pairs, pixels) rows: all, or the `newest`
        few (only those are copied)."""
        k = min(self.count, self.m)
        order = self._ring_order()
        rows = torch.arange(k, device=self.rho.device) if order is None else order
        rows = rows[-newest:] if newest else rows
        return self.s_rows[rows], self.y_rows[rows]

    def seed(self, s_rows: torch.Tensor, y_rows: torch.Tensor) -> None:
        """Start from these pairs (oldest first), as if this optimizer had made those moves itself."""
        for s, y in zip(s_rows[-self.m :], y_rows[-self.m :]):
            self._remember(y.to(self.s_rows.dtype), s.to(self.s_rows.dtype))

    def _remember(self, y: torch.Tensor, s: torch.Tensor) -> None:
        slot = self.count % self.m
        self.count += 1
        ys = y.dot(s)
        curved = ys > 1e-10
        # A pair without positive curvature is kept with rho = 0, which makes it a no-op in both loops.
        self.rho[slot] = torch.where(curved, 1.0 / ys, torch.zeros_like(ys))
        self.h_diag = torch.where(curved, ys / self._y_h0_y(y), self.h_diag)
        self.s_rows[slot] = s
        self.y_rows[slot] = y
        k = min(self.count, self.m)  # rows in use: the rest are still empty
        self.sy[slot, :k] = self.y_rows[:k] @ s
        self.sy[:k, slot] = self.s_rows[:k] @ y

    def prepare_static(self) -> None:
        """Set up `static_step`: the count of stored pairs as a device tensor (the ring's head moves on the device)."""
        dev = self.rho.device
        self._count_t = torch.full((), self.count, dtype=torch.long, device=dev)
        self._rows = torch.arange(self.m, device=dev)

    def static_step(self, grad: torch.Tensor) -> None:
        """A step after the first (`prev_grad` set), with the same shapes and kernels every time, so that it can be
        recorded in a CUDA graph with the loss's own pass: all m rows take part, the empty ones as no-ops (rho = 0,
        zero rows), and the ring's order comes from a count kept on the device. The caller adds one to `count`
        per step (no value is read back). `prepare_static` first."""
        grad = grad.detach().reshape(-1)
        y, s = grad - self.prev_grad, self.last_move
        slot = (self._count_t % self.m).view(1)
        ys = y.dot(s)
        curved = ys > 1e-10
        self.rho.index_copy_(0, slot, torch.where(curved, 1.0 / ys, torch.zeros_like(ys)).view(1))
        self.h_diag.copy_(torch.where(curved, ys / self._y_h0_y(y), self.h_diag))
        self.s_rows.index_copy_(0, slot, s.view(1, -1))
        self.y_rows.index_copy_(0, slot, y.view(1, -1))
        self.sy.index_copy_(0, slot, (self.y_rows @ s).view(1, -1))
        self.sy.index_copy_(1, slot, (self.s_rows @ y).view(-1, 1))
        self._count_t.add_(1)
        # Oldest first: the head is the next slot; while the ring is filling, its empty rows come first (no-ops).
        order = (self._rows + self._count_t) % self.m
        direction = self._directions(grad, self.s_rows, self.y_rows, self.rho, self.sy, order)
        direction = torch.where(grad.dot(direction) < 0, direction, grad.neg())
        move = direction * self.lr
        with torch.no_grad():
            self.param.add_(move.view_as(self.param))
        self.prev_grad.copy_(grad)
        self.last_move.copy_(move)

    def _y_h0_y(self, y: torch.Tensor) -> torch.Tensor:
        """y.M^-1 y: the initial guess's scale h = s.y over this matches the newest pair's curvature."""
        return y.dot(y) if self.smooth is None else y.dot(self.smooth(y))

    def _two_loop(self, grad: torch.Tensor) -> torch.Tensor:
        """-H g from the stored pairs in use (see the module docstring for the algebra)."""
        k = min(self.count, self.m)
        # Views, never copies: the big (pairs, pixels) rows stay where the ring put them.
        rows = (self.s_rows[:k], self.y_rows[:k], self.rho[:k], self.sy[:k, :k])
        return self._directions(grad, *rows, self._ring_order())

    def _directions(
        self,
        grad: torch.Tensor,
        s_rows: torch.Tensor,
        y_rows: torch.Tensor,
        rho_rows: torch.Tensor,
        sy_rows: torch.Tensor,
        order: torch.Tensor | None,
    ) -> torch.Tensor:
        """The two-loop recursion over rows in ring order (`order`: oldest to newest; None: already in order); only
        the small vectors are put in order."""

        def ordered(v: torch.Tensor) -> torch.Tensor:
            return v if order is None else v[order]

        def in_rows(v: torch.Tensor) -> torch.Tensor:
            return v if order is None else torch.empty_like(v).index_copy_(0, order, v)

        rho = ordered(rho_rows)
        sy = sy_rows if order is None else sy_rows[order][:, order]
        # Both systems are unit triangular: the solver reads only the strict triangle it is told of and takes the
        # diagonal as ones, so neither matrix needs masking or the identity added.
        q0 = grad.neg()
        rhs = (rho * ordered(s_rows @ q0))[:, None]
        alpha = torch.linalg.solve_triangular(rho[:, None] * sy, rhs, upper=True, unitriangular=True).squeeze(1)
        r0 = q0 - y_rows.T @ in_rows(alpha)
        r0 = (r0 if self.smooth is None else self.smooth(r0)) * self.h_diag
        rhs = (alpha - rho * ordered(y_rows @ r0))[:, None]
        c = torch.linalg.solve_triangular(rho[:, None] * sy.T, rhs, upper=False, unitriangular=True).squeeze(1)
        return r0 + s_rows.T @ in_rows(c)
