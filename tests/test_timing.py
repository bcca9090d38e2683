"""The time estimate's arithmetic: a step's price in two parts (per step, per megapixel) from two timed sizes, steps
counted per tile, several paintings each at its own price, and a guided step measured with portrait mode's regions."""

from __future__ import annotations

import pytest
import torch

from style_core import timing
from style_core.config import StyleConfig, scale_sizes, steps_per_scale
from style_core.portrait.schedule import calibration_guidance
from style_core.tiling import picture_pixels, tile_grid, work_megapixels, work_steps
from style_core.timing import Painting, StepPrice, StepPrices, StepTimer, estimate_seconds, painting_seconds


def test_a_steps_price_is_split_into_a_part_per_step_and_a_part_per_megapixel(monkeypatch):
    """Timed at two sizes, a step of 0.02 s + 3 s per megapixel (a guided one: 0.03 s + 4 s) gives back those parts,
    though some rounds ran beside other work, 10x slower: each size keeps its fastest step. A schedule's small scales
    are priced with the per-step part (one number per megapixel-step alone priced a 64 px scale at a third of its
    cost)."""
    timed = []

    def step(run, device):
        side, guided = run
        timed.append(run)
        slowed = 10.0 if len(timed) % 3 == 0 else 1.0  # contention, now on one size, now on the other
        return slowed * ((0.03 + 4.0 * side**2 / 1e6) if guided else (0.02 + 3.0 * side**2 / 1e6))

    monkeypatch.setattr(timing, "_calibration_run", lambda config, device, side, guidance: (side, guidance is not None))
    monkeypatch.setattr(timing, "_timed_step", step)
    prices = StepTimer(StyleConfig(), torch.device("cpu"), guidance=calibration_guidance(64)).measure()
    price = prices.plain
    assert price.per_step == pytest.approx(0.02) and price.per_megapixel_step == pytest.approx(3.0)
    assert prices.guided.per_step == pytest.approx(0.03) and prices.guided.per_megapixel_step == pytest.approx(4.0)
    config = StyleConfig(size=384, steps=300, start_size=64, device="cpu")
    sizes, counts = scale_sizes(config), steps_per_scale(config, len(scale_sizes(config)))
    pixels = [picture_pixels((384, 384), s)[0] * picture_pixels((384, 384), s)[1] for s in sizes]
    expected = 0.02 * 300 + 3.0 * sum((n + 1) * p for n, p in zip(counts, pixels)) / 1e6
    assert estimate_seconds(config, (384, 384), price) == pytest.approx(expected)
    assert estimate_seconds(config, (384, 384), 3.0) == pytest.approx(3.0 * work_megapixels(config, (384, 384)))


def test_a_tiled_scale_counts_its_steps_once_per_tile():
    config = StyleConfig(size=2048, steps=40, start_size=512, paint_size=1024, tile_size=512, device="cpu")
    sizes, counts = scale_sizes(config), steps_per_scale(config, len(scale_sizes(config)))
    expected = 0
    for side, n in zip(sizes, counts):
        h, w = picture_pixels((2048, 2048), side)
        expected += n * (len(tile_grid(h, w, config.tile_size, config.tile_overlap)) if side > 1024 else 1)
    assert work_steps(config, (2048, 2048)) == expected > sum(counts)


def test_paintings_are_priced_each_at_its_own_size_and_price():
    plain, guided = StepPrice(0.01, 2.0), StepPrice(0.02, 3.0)
    whole = Painting(StyleConfig(size=384, device="cpu"), (256, 384))
    face = Painting(StyleConfig(size=560, device="cpu"), (560, 560), guided=True)
    both = painting_seconds(whole, StepPrices(plain, guided)) + painting_seconds(face, StepPrices(plain, guided))
    apart = estimate_seconds(whole.config, whole.shape_hw, plain) + estimate_seconds(face.config, face.shape_hw, guided)
    assert both == pytest.approx(apart)
    unmeasured = painting_seconds(face, StepPrices(plain))  # no guided price: priced as plain
    as_plain = painting_seconds(Painting(face.config, face.shape_hw), StepPrices(plain))
    assert unmeasured == pytest.approx(as_plain)


def test_a_guided_step_is_timed_with_portrait_modes_regions(tiny_net, monkeypatch):
    """The calibration's guidance holds every region portrait mode matches, the whole face too, and a step with it
    runs on the tiny network (the real one is timed at start-up)."""
    guidance = calibration_guidance(64)
    assert {"skin", "eyes", "brows", "nose", "mouth", "hair", "background", "face"} <= set(guidance.content_masks)
    assert all(0.3 < float(m.max()) <= 1.0 for m in guidance.content_masks.values())
    monkeypatch.setattr(timing, "get_backbone", lambda config, device: type("B", (), {"net": tiny_net})())
    config = StyleConfig(size=64, device="cpu", autocast=False)
    prices = StepTimer(config, torch.device("cpu"), guidance=guidance).measure(rounds=1)
    assert prices.guided is not None and prices.guided.per_megapixel_step + prices.guided.per_step > 0


def test_a_runs_progress_goes_on_across_its_paintings():
    """Portrait mode on a small face: the whole picture, then the face's crop, each counting its steps from 0. The
    run's share done only grows, the first painting ends at its share of the estimated time, the last at 1."""
    whole = StyleConfig(size=384, steps=60, start_size=96, device="cpu")
    face = whole.replace(size=560, face_index=0)
    progress = timing.RunProgress([(Painting(whole, (384, 384)), 10.0), (Painting(face, (560, 560), True), 30.0)])
    shares, index = [], []
    for steps in (range(0, 61, 5), range(0, 61, 5)):
        for step in steps:
            shares.append(progress.fraction(step))
            index.append(progress.index)
    assert shares == sorted(shares) and shares[0] == 0.0 and shares[-1] == pytest.approx(1.0)
    assert shares[12] == pytest.approx(0.25)  # the whole picture done: 10 s of 40
    assert index == [0] * 13 + [1] * 13
    assert timing.painting_fraction(face, 30) < 0.5  # half the steps, less than half the work: the large scales last
    single = timing.RunProgress([(Painting(whole, (384, 384)), 1.0)])
    assert [single.fraction(s) for s in (0, 60, 0)][-1] == 0.0 and single.index == 0  # one painting: no next one
