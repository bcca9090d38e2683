"""The memory guard: the estimate grows with the size, what the machine can give is read from the OS (cgroup
limits included), and a size that would not fit is tiled or, failing that, shrunk with a warning."""

from __future__ import annotations

import warnings

from style_core import api, memory
from style_core.config import StyleConfig, scale_sizes, tile_above

GB = memory.GB


def _costs(tiny_net):
    return memory.network_costs(tiny_net, 4)


def test_the_estimate_grows_with_the_pixels_and_tiling_bounds_it(tiny_net):
    costs = memory.network_costs(tiny_net, 2)
    untiled = [memory.estimate_bytes(StyleConfig(size=s, tile_above=8192), (3, 4), costs) for s in (512, 1024, 2048)]
    assert untiled[0] < untiled[1] < untiled[2]
    tiled = memory.estimate_bytes(StyleConfig(size=4096), (3, 4), costs)
    assert tiled < memory.estimate_bytes(StyleConfig(size=4096, tile_above=8192), (3, 4), costs) / 2


def test_the_vgg19_estimate_matches_the_measured_peaks():
    # Measured (benchmarks/results/print.log, VGG19 original weights, bf16, 2 threads): peak RSS minus what the
    # process held before the run.
    from style_core.backbone import VGGFeatures

    cfg = StyleConfig()
    net = VGGFeatures("vgg19", [*cfg.content_layers, *cfg.style_layers])
    costs = memory.network_costs(net, 2)
    shape = (1331, 1054)  # brad_pitt.jpg
    runs = [
        (StyleConfig(size=1024, steps=12, start_size=256, tile_above=8192), 3.39 - 1.21),
        (StyleConfig(size=1448, steps=12, start_size=256, paint_size=724, tile_above=8192), 4.90 - 1.20),
        (StyleConfig(size=4096), 5.07 - 1.16),
        (StyleConfig(size=3000, steps=8, tile_size=512), 3.35 - 1.21),
    ]
    for config, measured in runs:
        estimate = memory.estimate_bytes(config, shape, costs) / GB
        assert measured <= estimate <= 1.3 * measured, (config.size, estimate, measured)


def test_the_guard_tiles_a_size_that_would_not_fit_untiled(tiny_net):
    cfg = StyleConfig(size=4096, tile_above=8192)
    costs = _costs(tiny_net)
    need = memory.estimate_bytes(cfg, (3072, 4096), costs)
    plan = memory.plan_memory(cfg, (3072, 4096), costs, budget=need // 2)
    assert plan.config.size == 4096 and not plan.note
    assert tile_above(plan.config) < 4096  # the large scales run tile by tile
    assert plan.estimate <= need // 2


def test_the_guard_shrinks_when_even_tiles_do_not_fit_and_says_why(tiny_net):
    cfg = StyleConfig(size=4096)
    costs = _costs(tiny_net)
    plan = memory.plan_memory(cfg, (3072, 4096), costs, budget=int(0.6 * GB))
    assert plan.config.size < 4096 and plan.estimate <= 0.6 * GB
    assert "not enough memory for 4096 px" in plan.note and f"painted at {plan.config.size} px" in plan.note
    assert scale_sizes(plan.config)[-1] == plan.config.size


def test_stylize_with_too_little_memory_paints_smaller_with_a_warning(tiny_net, content_img, style_img, monkeypatch):
    """A size that would not fit on this machine (its free memory faked): never started, painted smaller."""
    monkeypatch.setattr(memory, "available_bytes", lambda device: int(1.5 * GB))  # budget: half of it
    monkeypatch.setattr(memory, "process_rss_bytes", lambda: 0)
    cfg = StyleConfig(size=4096, steps=4, start_size=32, device="cpu", autocast=False, refine_steps=1)
    plan = api.plan_memory(content_img, cfg, tiny_net)
    assert plan.config.size < 4096 and plan.budget == int(0.75 * GB)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frames = api.stylize(content_img, style_img, cfg, backbone=tiny_net)
        first = next(frames)
        frames.close()
    assert "not enough memory for 4096 px" in first.message and f"painted at {plan.config.size} px" in first.message
    assert any("not enough memory" in str(w.message) for w in caught)


def test_an_explicit_cap_counts_what_the_process_holds(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device: 20 * GB)
    monkeypatch.setattr(memory, "held_bytes", lambda device: 1 * GB)
    import torch

    cpu = torch.device("cpu")
    assert memory.budget_bytes(StyleConfig(max_memory_gb=4), cpu) == 3 * GB
    assert memory.budget_bytes(StyleConfig(), cpu) == 10 * GB
    monkeypatch.setattr(memory, "available_bytes", lambda device: 2 * GB)
    assert memory.budget_bytes(StyleConfig(max_memory_gb=4), cpu) == int(1.8 * GB)  # a cap above what is free


def test_a_cgroup_limit_is_read(tmp_path, monkeypatch):
    (tmp_path / "memory.max").write_text("4294967296\n")
    (tmp_path / "memory.current").write_text("1073741824\n")
    monkeypatch.setattr(memory, "CGROUP_FILES", ((str(tmp_path / "memory.max"), str(tmp_path / "memory.current")),))
    assert memory.cgroup_free_bytes() == 3 * GB
    (tmp_path / "memory.max").write_text("max\n")
    assert memory.cgroup_free_bytes() is None
