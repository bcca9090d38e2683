import copy
import time

import numpy as np
import pytest
import torch
from PIL import Image

from style_core import StyleConfig, StylizeError, engine, networks, scale_run, stylize
from style_core.color import preserve_colors, rgb_to_ycc
from style_core.engine import to_tensor
from style_core.objective import Objective


def test_frames_come_in_order_with_exactly_one_final(tiny_net, tiny_config, content_img, style_img):
    started = time.perf_counter()
    frames = list(stylize(content_img, style_img, tiny_config, backbone=tiny_net))
    wall = time.perf_counter() - started
    steps = [f.step for f in frames]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    assert [f.is_final for f in frames] == [False] * (len(frames) - 1) + [True]
    final = frames[-1]
    assert final.step == final.total_steps == 24
    assert max(final.image.size) == 48 and final.image.mode == "RGB"
    assert {"content", "style", "tv", "total"} <= set(final.losses)
    scales = [f.scale for f in frames]
    assert scales == sorted(scales) and scales[0] == 24
    assert sum(f.event == "scale" for f in frames) == final.num_scales - 1
    elapsed = [f.elapsed for f in frames]
    assert elapsed == sorted(elapsed) and elapsed[0] > 0 and elapsed[-1] <= wall  # the run's own clock


def test_frame_every_k_steps(tiny_net, content_img, style_img):
    cfg = StyleConfig(size=32, start_size=32, steps=20, checkpoint_every=5, device="cpu")
    steps = [f.step for f in stylize(content_img, style_img, cfg, backbone=tiny_net)]
    assert steps == [5, 10, 15, 20]


def test_close_stops_the_run(tiny_net, content_img, style_img):
    cfg = StyleConfig(size=48, start_size=48, steps=10_000, checkpoint_every=2, device="cpu")
    gen = stylize(content_img, style_img, cfg, backbone=tiny_net)
    first = next(gen)
    t0 = time.perf_counter()
    gen.close()
    assert time.perf_counter() - t0 < 1.0
    assert first.step == 2 and not first.is_final
    with pytest.raises(StopIteration):
        next(gen)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
@pytest.mark.parametrize("style_loss", ["gram", "w2"])
def test_optimizers_and_losses_reduce_the_style_loss(
    tiny_net, content_img, style_img, optimizer, style_loss, precision
):
    cfg = StyleConfig(
        autocast=precision == "bf16",
        size=40,
        start_size=40,
        steps=30,
        checkpoint_every=1,
        device="cpu",
        optimizer=optimizer,
        style_loss=style_loss,
        lr=0.05,
        style_weight=10,
    )
    run_net = networks.run_network(tiny_net, cfg, torch.device("cpu"))
    assert next(run_net.features.parameters()).dtype == (torch.bfloat16 if precision == "bf16" else torch.float32)
    frames = list(stylize(content_img, style_img, cfg, backbone=tiny_net))
    assert frames[-1].losses["style"] < 0.5 * frames[0].losses["style"]


@pytest.mark.parametrize(
    ("amx", "avx512_bf16", "expected"), [(True, False, True), (False, True, True), (False, False, False)]
)
def test_a_cpu_with_amx_or_avx512_bf16_runs_the_bf16_twin(monkeypatch, amx, avx512_bf16, expected):
    """AMX (Intel) and AVX512-BF16 alone (AMD Zen 4) both get the bf16 network; a CPU with neither stays in float32.
    Asks the real detection, not conftest's stand-in."""
    monkeypatch.undo()  # conftest's autouse stand-in for networks.cpu_has_bf16
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    networks.cpu_has_bf16.cache_clear()
    try:
        assert networks.use_autocast(torch.device("cpu")) is expected
    finally:
        networks.cpu_has_bf16.cache_clear()


@pytest.mark.parametrize("bf16", [True, False])
def test_the_status_line_says_which_precision_the_network_runs_in(monkeypatch, bf16):
    """A CPU without bf16 units paints about twice as slowly: the weights report the app and CLI show says so."""
    monkeypatch.setattr(networks, "cpu_has_bf16", lambda: bf16)
    monkeypatch.setattr(networks, "get_backbone", lambda config, device: type("B", (), {"report": "weights: tiny"})())
    report = networks.warm_up(StyleConfig(device="cpu"))
    assert report.startswith("weights: tiny | device: cpu (")
    assert report.endswith("bf16 network" if bf16 else "float32 network")
    assert networks.warm_up(StyleConfig(device="cpu", autocast=False)).endswith("float32 network")


def test_low_precision_twin_runs_channels_last_with_the_same_features(tiny_net):
    """The bf16 twin keeps its convolutions channels-last (no reorders around oneDNN's AMX kernels); the features
    are those of the same bf16 network in the default layout, and gradients still reach an NCHW picture."""
    from style_core.backbone import low_precision_copy

    twin = low_precision_copy(tiny_net)
    plain = copy.deepcopy(tiny_net)
    plain.features.to(torch.bfloat16)
    assert twin.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(1, 3, 48, 40, requires_grad=True)
    a, b = twin(x), plain(x.detach())
    for name in b:
        assert torch.allclose(a[name].float(), b[name].float(), rtol=2e-2, atol=2e-2)
    sum(v.float().pow(2).mean() for v in a.values()).backward()
    assert x.grad is not None and x.grad.is_contiguous() and torch.isfinite(x.grad).all()


def test_seed_makes_cpu_runs_reproducible(tiny_net, tiny_config, content_img, style_img):
    cfg = tiny_config.replace(init="noise", seed=7)
    a = list(stylize(content_img, style_img, cfg, backbone=tiny_net))[-1].image
    b = list(stylize(content_img, style_img, cfg, backbone=tiny_net))[-1].image
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_two_styles_blend_and_need_matching_weights(tiny_net, tiny_config, content_img, style_img):
    cfg = tiny_config.replace(style_blend=(0.7, 0.3))
    assert list(stylize(content_img, [style_img, content_img], cfg, backbone=tiny_net))[-1].is_final
    with pytest.raises(StylizeError, match="blend weights"):
        next(stylize(content_img, [style_img], cfg, backbone=tiny_net))


def test_colour_preservation_keeps_the_content_chroma(tiny_net, tiny_config, content_img, style_img):
    cfg = tiny_config.replace(preserve_colors=True)
    out = list(stylize(content_img, style_img, cfg, backbone=tiny_net))[-1].image
    got = rgb_to_ycc(to_tensor(out, torch.device("cpu")))[0, 1:]
    want = rgb_to_ycc(to_tensor(content_img.resize(out.size), torch.device("cpu")))[0, 1:]
    assert (got - want).abs().mean() < 0.02
    # and the function alone: the luminance is the stylized one
    a, b = 0.3 + 0.4 * torch.rand(1, 3, 8, 8), 0.45 + 0.1 * torch.rand(1, 3, 8, 8)  # in gamut: no clamping
    mixed = preserve_colors(a, b)
    assert torch.allclose(rgb_to_ycc(mixed)[0, 0], rgb_to_ycc(a)[0, 0], atol=1e-4)


def test_non_finite_loss_rolls_back_and_ends_with_a_good_frame(tiny_net, content_img, style_img, monkeypatch):
    original = Objective.__call__
    calls = {"n": 0}

    def poisoned(self, image):
        total, terms = original(self, image)
        calls["n"] += 1
        if calls["n"] > 3:
            total = total * float("nan")
            terms = {**terms, "total": total}
        return total, terms

    monkeypatch.setattr(Objective, "__call__", poisoned)
    cfg = StyleConfig(size=32, start_size=32, steps=40, checkpoint_every=2, device="cpu")
    frames = list(stylize(content_img, style_img, cfg, backbone=tiny_net))
    assert frames[-1].is_final and "invalid" in frames[-1].message
    assert np.isfinite(np.asarray(frames[-1].image, dtype=float)).all()


def test_should_stop_ends_with_a_final_frame_of_the_current_picture(tiny_net, content_img, style_img):
    cfg = StyleConfig(size=48, start_size=24, steps=10_000, checkpoint_every=3, device="cpu")
    polls = {"n": 0}

    def stop_after_ten_steps() -> bool:
        polls["n"] += 1
        return polls["n"] > 10

    frames = list(stylize(content_img, style_img, cfg, backbone=tiny_net, should_stop=stop_after_ten_steps))
    assert frames[-1].is_final and frames[-1].step == 10 and "stopped" in frames[-1].message
    assert sum(f.is_final for f in frames) == 1


def _run_out_of_memory_above(monkeypatch, limit: int) -> list[int]:
    """Make the objective fail like a full GPU whenever the picture's long side exceeds `limit`."""
    sides: list[int] = []
    real_call = Objective.__call__

    def call(self, image):
        sides.append(max(image.shape[-2:]))
        if max(image.shape[-2:]) > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_call(self, image)

    monkeypatch.setattr(Objective, "__call__", call)
    return sides


def test_out_of_memory_retries_at_a_smaller_size_with_a_warning(tiny_net, monkeypatch):
    sides = _run_out_of_memory_above(monkeypatch, 160)
    content = Image.new("RGB", (200, 150), (120, 80, 60))
    style = Image.new("RGB", (64, 64), (20, 40, 200))
    cfg = StyleConfig(size=200, start_size=100, steps=6, checkpoint_every=2, device="cpu")
    with pytest.warns(RuntimeWarning, match="out of memory at 200 px"):
        frames = list(stylize(content, style, cfg, backbone=tiny_net))
    final = frames[-1]
    assert final.is_final and max(final.image.size) == 150
    assert "out of memory at 200 px, so it was painted at 150 px" in final.message
    assert max(sides) == 200 and sides[-1] == 150


def test_out_of_memory_at_the_smallest_size_is_a_plain_error(tiny_net, monkeypatch):
    _run_out_of_memory_above(monkeypatch, 16)
    cfg = StyleConfig(size=96, start_size=48, steps=4, device="cpu")
    with pytest.raises(StylizeError, match="out of memory even at 96 px"):
        list(stylize(Image.new("RGB", (96, 96)), Image.new("RGB", (64, 64)), cfg, backbone=tiny_net))


def test_a_diverging_step_is_undone_and_the_run_goes_on(tiny_net, content_img, style_img, monkeypatch):
    """A loss that jumps far above the best at this scale (a wild L-BFGS step) rolls back to the last good
    picture with a fresh optimizer, without ending the run or reporting a fault."""
    original = Objective.__call__
    calls = {"n": 0}

    def spiking(self, image):
        total, terms = original(self, image)
        calls["n"] += 1
        if calls["n"] in (6, 7, 8):  # three evaluations far above the rest
            total = total * 1000
            terms = {**terms, "total": total}
        return total, terms

    made = []
    real_make = scale_run.ScaleRun._make_optimizer

    def counting_make(self):
        made.append(self.lr_scale)
        real_make(self)

    monkeypatch.setattr(Objective, "__call__", spiking)
    monkeypatch.setattr(scale_run.ScaleRun, "_make_optimizer", counting_make)
    cfg = StyleConfig(size=32, start_size=32, steps=20, checkpoint_every=2, device="cpu")
    frames = list(stylize(content_img, style_img, cfg, backbone=tiny_net))
    assert frames[-1].is_final and frames[-1].step == 20 and frames[-1].message == ""
    assert 0.5 in made  # the optimizer was remade with a shorter step after the spike


@pytest.mark.parametrize("bad_step", [4, 12])  # in the middle of the scale, and its very last step
def test_a_step_that_wrecks_the_picture_is_undone_not_kept(tiny_net, content_img, style_img, monkeypatch, bad_step):
    """One L-BFGS move that blows the picture up (here: to all white, which the objective scores 1000 times worse):
    the rollback must go back to the picture before that move, not to the wrecked one, and a wild last move must
    not be the result either. Each loss belongs to the picture a step starts from, not to the one it moves to."""
    from style_core.lbfgs import LBFGS

    original_call, original_step = Objective.__call__, LBFGS.step
    steps = {"n": 0}

    def scored(self, image):
        total, terms = original_call(self, image)
        if float(image.mean()) > 0.999:  # the wrecked picture
            total = total * 1000
            terms = {**terms, "total": total}
        return total, terms

    def wrecking(self, closure):
        loss = original_step(self, closure)
        steps["n"] += 1
        if steps["n"] == bad_step:
            with torch.no_grad():
                self.param.fill_(1e3)
        return loss

    monkeypatch.setattr(Objective, "__call__", scored)
    monkeypatch.setattr(LBFGS, "step", wrecking)
    cfg = StyleConfig(size=32, start_size=32, steps=12, checkpoint_every=1, device="cpu")
    frames = list(stylize(content_img, style_img, cfg, backbone=tiny_net))
    final = np.asarray(frames[-1].image, dtype=float) / 255
    assert frames[-1].is_final and steps["n"] >= bad_step
    assert final.mean() < 0.95, "the run ended on the wrecked (white) picture"


@pytest.mark.parametrize("optimizer", ["lbfgs", "lbfgs-update-recorded", "lbfgs-update-recorded-smoothed", "adam"])
def test_a_replayed_step_graph_runs_exactly_as_eager_steps(tiny_net, content_img, style_img, monkeypatch, optimizer):
    """A CUDA graph overwrites the loss and the gradient in place at every replay. Simulated on the CPU (the same
    fixed buffers, filled by an eager pass), the run must be step for step the one without graphs: nothing kept
    across steps (L-BFGS's last gradient, the scale's first loss) may alias the replayed buffers. Adam's run is the
    same to the bit, and so is L-BFGS's with its update run eagerly; its recorded update (`cuda_graph_update`) sums
    over all its history rows, the empty ones as zeros, so that run agrees to rounding, with its first guess smoothed
    (`lbfgs_smoothing`) too."""
    from style_core.graphs import StepGraph

    update = optimizer.startswith("lbfgs-update-recorded")
    cfg = StyleConfig(size=48, start_size=24, steps=30, checkpoint_every=5, device="cpu",
                      optimizer=optimizer.split("-")[0], cuda_graph_update=update,
                      lbfgs_smoothing=8.0 if optimizer.endswith("smoothed") else 0.0)
    eager = list(stylize(content_img, style_img, cfg, backbone=tiny_net))
    recorded = []

    def recording(*args, **kwargs):
        recorded.append(kwargs.get("simulate"))
        return StepGraph(*args, **kwargs)

    monkeypatch.setattr(engine, "graph_mode", lambda config, device: "simulate")
    monkeypatch.setattr(scale_run, "StepGraph", recording)
    graphed = list(stylize(content_img, style_img, cfg, backbone=tiny_net))
    assert recorded == [True] * eager[-1].num_scales  # one recording per scale, after its warm-up steps
    assert [f.step for f in graphed] == [f.step for f in eager]
    if not update:
        assert [f.losses for f in graphed] == [f.losses for f in eager]
        assert np.array_equal(np.asarray(graphed[-1].image), np.asarray(eager[-1].image))
        return
    for g, e in zip(graphed, eager):
        assert g.losses == pytest.approx(e.losses, rel=1e-4)
    last = [np.asarray(f.image, dtype=float) for f in (graphed[-1], eager[-1])]
    assert np.abs(last[0] - last[1]).max() <= 2  # of 255


def test_a_recorded_update_that_goes_wrong_is_undone_and_recorded_again(tiny_net, content_img, style_img, monkeypatch):
    """With L-BFGS's update in the graph (`cuda_graph_update`), a move that makes the picture NaN is rolled back like
    any other, and the restarted optimizer (new buffers) gets a graph of its own after its warm-up steps: the old one
    would have kept moving the old optimizer's buffers."""
    from style_core.graphs import StepGraph
    from style_core.lbfgs import LBFGS

    original = LBFGS.static_step
    calls, recorded = {"n": 0}, []

    def wrecking(self, grad):
        original(self, grad)
        calls["n"] += 1
        if calls["n"] == 6:
            with torch.no_grad():
                self.param.fill_(float("nan"))

    def recording(*args, **kwargs):
        recorded.append(kwargs.get("update") is not None)
        return StepGraph(*args, **kwargs)

    monkeypatch.setattr(LBFGS, "static_step", wrecking)
    monkeypatch.setattr(engine, "graph_mode", lambda config, device: "simulate")
    monkeypatch.setattr(scale_run, "StepGraph", recording)
    cfg = StyleConfig(size=32, start_size=32, steps=20, checkpoint_every=2, device="cpu", cuda_graph_update=True)
    frames = list(stylize(content_img, style_img, cfg, backbone=tiny_net))
    assert frames[-1].is_final and frames[-1].step == 20
    assert "recovered from an invalid step" in frames[-1].message
    assert recorded == [True, True]  # the scale's first graph, then the restarted optimizer's
    assert np.isfinite(np.asarray(frames[-1].image, dtype=float)).all()


def test_a_step_graph_that_cannot_be_recorded_falls_back_to_eager_steps(tiny_net, content_img, style_img, monkeypatch):
    cfg = StyleConfig(size=48, start_size=24, steps=20, checkpoint_every=5, device="cpu")
    eager = list(stylize(content_img, style_img, cfg, backbone=tiny_net))

    def unrecordable(*args, **kwargs):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(engine, "graph_mode", lambda config, device: "simulate")
    monkeypatch.setattr(scale_run, "StepGraph", unrecordable)
    with pytest.warns(RuntimeWarning, match="CUDA graph recording failed"):
        fallback = list(stylize(content_img, style_img, cfg, backbone=tiny_net))
    assert np.array_equal(np.asarray(fallback[-1].image), np.asarray(eager[-1].image))


def test_step_graphs_are_asked_for_only_on_cuda_with_the_gram_loss():
    graph_mode = scale_run.graph_mode
    on = StyleConfig(cuda_graphs=True)
    assert graph_mode(on, torch.device("cuda")) == "cuda"
    assert graph_mode(on, torch.device("cpu")) is None
    assert graph_mode(on.replace(style_loss="w2"), torch.device("cuda")) is None
    assert graph_mode(StyleConfig(), torch.device("cuda")) == "cuda"  # on by default
    assert graph_mode(StyleConfig(cuda_graphs=False), torch.device("cuda")) is None


def test_each_finer_scale_starts_from_the_coarser_scales_curvature_pairs(
    tiny_net, tiny_config, content_img, style_img, monkeypatch
):
    """With warm_curvature, the second scale's L-BFGS holds pairs before its first step: the first scale's, resized
    (moves as they were, gradient changes divided by the growth in pixels); without it, none."""
    seen = []
    real = scale_run.ScaleRun.__init__

    def spy(self, objective, x, config, graph_mode=None, inherited=None):
        real(self, objective, x, config, graph_mode, inherited)
        assert self.inherited is None  # the resized copy is dropped once seeded
        seen.append((tuple(x.shape[-2:]), self.opt.count, inherited))

    monkeypatch.setattr(scale_run.ScaleRun, "__init__", spy)
    handed = []
    real_pairs = engine._pairs_as_pictures
    monkeypatch.setattr(engine, "_pairs_as_pictures", lambda *a: handed.append(1) or real_pairs(*a))
    list(stylize(content_img, style_img, tiny_config, backbone=tiny_net))
    assert len(handed) == len(seen) - 1  # none gathered after the last scale, which has no scale to hand them to
    assert seen[0][1] == 0 and seen[0][2] is None
    assert all(count > 0 for _, count, _ in seen[1:])
    h1, w1 = seen[1][0]
    assert seen[1][2][0].shape[1] == seen[1][2][1].shape[1] == 3 * h1 * w1
    assert seen[1][2][0].shape[0] <= engine.HANDED_DOWN_PAIRS
    seen.clear()
    list(stylize(content_img, style_img, tiny_config.replace(warm_curvature=False), backbone=tiny_net))
    assert all(count == 0 and pairs is None for _, count, pairs in seen)


def test_resized_pairs_keep_the_moves_and_scale_the_gradient_changes():
    s = torch.full((2, 3, 4, 5), 0.25)
    y = torch.full((2, 3, 4, 5), 8.0)
    s_fine, y_fine = engine._resized_pairs((s, y), torch.zeros(1, 3, 8, 10))
    assert s_fine.shape == y_fine.shape == (2, 3 * 8 * 10)
    torch.testing.assert_close(s_fine, torch.full_like(s_fine, 0.25))
    torch.testing.assert_close(y_fine, torch.full_like(y_fine, 2.0))  # 4x the pixels: a quarter of the change


def test_lbfgs_smoothing_reaches_the_optimizer_and_a_tv_heavy_objective_goes_lower_in_the_same_steps(
    tiny_net, content_img, style_img, monkeypatch
):
    """`lbfgs_smoothing` shapes each scale's L-BFGS first guess (`lbfgs.SmoothingFilter`); with a large TV weight the
    run ends lower in the same steps (the tiny network, tv 1000: 3.48 plain, 2.75 smoothed when written)."""
    filters = []
    real = scale_run.ScaleRun._make_optimizer

    def spy(self):
        real(self)
        filters.append(self.opt.smooth)

    monkeypatch.setattr(scale_run.ScaleRun, "_make_optimizer", spy)
    cfg = StyleConfig(size=48, start_size=24, steps=30, checkpoint_every=1, device="cpu", autocast=False,
                      tv_weight=1000.0)
    plain = list(stylize(content_img, style_img, cfg, backbone=tiny_net))[-1].losses["total"]
    assert filters and all(f is None for f in filters)
    filters.clear()
    smoothed = list(stylize(content_img, style_img, cfg.replace(lbfgs_smoothing=8.0), backbone=tiny_net))[-1]
    assert filters and all(f is not None for f in filters)
    assert smoothed.losses["total"] < 0.95 * plain
