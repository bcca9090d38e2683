"""The sync-free L-BFGS follows torch.optim.LBFGS (max_iter=1, no line search) step for step."""

import torch

from style_core.lbfgs import LBFGS, SmoothingFilter


def _quadratic(n: int = 40, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=gen, dtype=torch.float64)
    hess = a @ a.T / n + 0.1 * torch.eye(n, dtype=torch.float64)
    b = torch.randn(n, generator=gen, dtype=torch.float64)
    return lambda x: 0.5 * x @ hess @ x - b @ x


def _step(opt, x: torch.Tensor, f) -> None:
    """One optimizer step on f at x (the closure L-BFGS asks for)."""

    def closure():
        opt.zero_grad()
        loss = f(x)
        loss.backward()
        return loss

    opt.step(closure)


def _run(make_opt, f, steps: int, shape: tuple[int, ...] = (40,)) -> list[torch.Tensor]:
    x = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    opt = make_opt(x)
    path = []
    for _ in range(steps):
        _step(opt, x, f)
        path.append(x.detach().clone())
    return path


def _static_run(make_opt, f, steps: int, shape: tuple[int, ...] = (40,)) -> tuple[list[torch.Tensor], LBFGS]:
    """The path of the recordable update (what a CUDA graph replays): the first step the plain one (no pair yet), then
    `static_step` with the count moved by the caller, as the scale run does."""
    x = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    opt = make_opt(x)
    _step(opt, x, f)
    opt.prepare_static()
    path = [x.detach().clone()]
    for _ in range(steps - 1):
        x.grad = None
        f(x).backward()
        opt.static_step(x.grad)
        opt.count += 1
        path.append(x.detach().clone())
    return path, opt


def test_same_iterates_as_torch_lbfgs_on_a_convex_quadratic():
    f = _quadratic()
    ours = _run(lambda x: LBFGS(x, lr=1.0, history_size=5), f, 25)
    ref = _run(
        lambda x: torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=5, tolerance_grad=0.0, tolerance_change=0.0),
        f,
        25,
    )
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    assert f(ours[-1]) < f(ours[0])


def test_a_pair_without_positive_curvature_is_a_no_op_and_steps_still_descend():
    f = lambda x: (x**2).sum()  # noqa: E731
    x = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = LBFGS(x, lr=0.5, history_size=3)
    opt._remember(torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([-1.0, 0.0], dtype=torch.float64))
    assert float(opt.rho[0]) == 0.0 and float(opt.h_diag) == 1.0
    losses = []
    for _ in range(5):
        def closure():
            opt.zero_grad()
            loss = f(x)
            loss.backward()
            return loss

        losses.append(float(opt.step(closure).detach()))
    assert losses == sorted(losses, reverse=True) and losses[-1] < losses[0]


def test_pairs_come_back_oldest_first_after_the_ring_wraps():
    f = _quadratic()
    x = torch.zeros(40, dtype=torch.float64, requires_grad=True)
    opt = LBFGS(x, lr=1.0, history_size=4)
    moves = []
    for _ in range(9):
        before = x.detach().clone()
        _step(opt, x, f)
        moves.append(x.detach() - before)
    s_rows, _ = opt.pairs()
    # 9 steps store 8 pairs (each pair is made at the next step); the ring of 4 keeps moves 5..8, oldest first.
    torch.testing.assert_close(s_rows, torch.stack(moves[4:8]), rtol=1e-12, atol=1e-12)
    newest, _ = opt.pairs(newest=2)
    torch.testing.assert_close(newest, torch.stack(moves[6:8]), rtol=1e-12, atol=1e-12)


def test_seeded_pairs_make_the_first_steps_quasi_newton():
    """Pairs handed down from a run on the same problem: the new optimizer's first steps go much further down than
    a cold start's (whose first step is a unit move), the warm start the engine gives each finer scale."""
    f = _quadratic()
    donor_x = torch.zeros(40, dtype=torch.float64, requires_grad=True)
    donor = LBFGS(donor_x, lr=1.0, history_size=10)
    for _ in range(12):
        _step(donor, donor_x, f)
    pairs = donor.pairs()
    start = torch.full((40,), 0.5, dtype=torch.float64)

    def three_steps(seed: bool) -> float:
        x = start.clone().requires_grad_(True)
        opt = LBFGS(x, lr=1.0, history_size=10)
        if seed:
            opt.seed(*pairs)
        for _ in range(3):
            _step(opt, x, f)
        return float(f(x.detach()))

    zero = torch.zeros(40, dtype=torch.float64)
    minimum = torch.linalg.solve(torch.func.hessian(f)(zero), -torch.func.grad(f)(zero))  # H x = b
    best = float(f(minimum))
    cold, warm = three_steps(False), three_steps(True)
    assert warm < cold
    assert warm - best < 0.5 * (cold - best)


def test_the_recordable_step_takes_the_same_path_as_the_plain_one_before_and_after_the_ring_wraps():
    """`static_step` (all rows, empty ones as no-ops, the ring's order from a device-side count: what a CUDA graph
    records) moves the picture as `step` does, while the history fills and after it wraps."""
    f = _quadratic()
    plain = _run(lambda x: LBFGS(x, lr=1.0, history_size=5), f, 14)
    static, opt = _static_run(lambda x: LBFGS(x, lr=1.0, history_size=5), f, 14)
    for a, b in zip(plain, static):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(opt.pairs()[0], _plain_pairs_after(14)[0])


def _plain_pairs_after(plain_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    f = _quadratic()
    x = torch.zeros(40, dtype=torch.float64, requires_grad=True)
    opt = LBFGS(x, lr=1.0, history_size=5)
    for _ in range(plain_steps):
        _step(opt, x, f)
    return opt.pairs()


PICTURE = (1, 2, 8, 8)  # a small picture-shaped parameter: the smoothing filter works per channel over (H, W)


def _laplacian(v: torch.Tensor) -> torch.Tensor:
    """The 5-point Laplacian with wrap-around edges, written out in the picture's own terms."""
    return 4 * v - sum(torch.roll(v, shift, dim) for shift in (1, -1) for dim in (-2, -1))


def _dense(op, n: int) -> torch.Tensor:
    """The matrix of a linear map on flattened pictures, column by column."""
    eye = torch.eye(n, dtype=torch.float64)
    return torch.stack([op(eye[i].view(PICTURE)).reshape(-1) for i in range(n)], dim=1)


def test_the_smoothing_filter_is_the_inverse_of_one_plus_strength_times_the_laplacian():
    n = torch.Size(PICTURE).numel()
    m = torch.eye(n, dtype=torch.float64) + 3.0 * _dense(_laplacian, n)
    v = torch.randn(n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    smooth = SmoothingFilter(torch.Size(PICTURE), 3.0, torch.device("cpu"), torch.float64)
    torch.testing.assert_close(smooth(v), torch.linalg.solve(m, v), rtol=1e-10, atol=1e-12)


def _tv_heavy_quadratic():
    """A picture's quadratic whose curvature grows with spatial frequency, as under a strong TV term (50 L), plus a
    few random directions of its own (what the network's terms add): the case the smoothed first guess is for."""
    n = torch.Size(PICTURE).numel()
    gen = torch.Generator().manual_seed(2)
    low_rank = torch.randn(n, 4, generator=gen, dtype=torch.float64)
    hess = torch.eye(n, dtype=torch.float64) + 50.0 * _dense(_laplacian, n) + low_rank @ low_rank.T
    b = torch.randn(n, generator=gen, dtype=torch.float64)
    best = float(-0.5 * b @ torch.linalg.solve(hess, b))
    return (lambda x: 0.5 * x.reshape(-1) @ hess @ x.reshape(-1) - b @ x.reshape(-1)), best


def _steps_to_converge(smoothing: float, limit: int = 300) -> int:
    f, best = _tv_heavy_quadratic()
    x = torch.zeros(PICTURE, dtype=torch.float64, requires_grad=True)
    opt = LBFGS(x, lr=1.0, history_size=10, smoothing=smoothing)
    for step in range(1, limit + 1):
        _step(opt, x, f)
        if float(f(x.detach())) - best < 1e-8 * abs(best):
            return step
    return limit + 1


def test_a_smoothed_first_guess_needs_far_fewer_steps_when_the_curvature_grows_with_frequency():
    plain, smoothed = _steps_to_converge(0.0), _steps_to_converge(50.0)
    assert smoothed <= 15
    assert smoothed * 3 <= plain


def test_the_recordable_step_takes_the_same_path_as_the_plain_one_with_smoothing_too():
    f, _ = _tv_heavy_quadratic()

    def make(x: torch.Tensor) -> LBFGS:
        return LBFGS(x, lr=1.0, history_size=5, smoothing=20.0)

    plain = _run(make, f, 12, PICTURE)
    static, _ = _static_run(make, f, 12, PICTURE)
    assert len(static) == len(plain) == 12
    for a, b in zip(plain, static):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
