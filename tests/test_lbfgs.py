"""The sync-free L-BFGS follows torch.optim.LBFGS (max_iter=1, no line search) step for step."""

import torch

from style_core.lbfgs import LBFGS


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


def _run(make_opt, f, steps: int) -> list[torch.Tensor]:
    x = torch.zeros(40, dtype=torch.float64, requires_grad=True)
    opt = make_opt(x)
    path = []
    for _ in range(steps):
        _step(opt, x, f)
        path.append(x.detach().clone())
    return path


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

    x = torch.zeros(40, dtype=torch.float64, requires_grad=True)
    opt = LBFGS(x, lr=1.0, history_size=5)
    _step(opt, x, f)  # the first step (no pair yet) is always the plain one
    opt.prepare_static()
    static = [x.detach().clone()]
    for _ in range(13):
        x.grad = None
        f(x).backward()
        opt.static_step(x.grad)
        opt.count += 1
        static.append(x.detach().clone())
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
