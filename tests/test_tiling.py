"""The tiled scale: tiles cover the picture, the face stays in one tile, the whole picture's statistics accumulated
over tiles are the untiled ones, blending leaves no seam, and tiled runs stream whole pictures in both modes."""

from __future__ import annotations

import pytest
import torch

from style_core import engine
from style_core.backbone import random_backbone
from style_core.config import StyleConfig
from style_core.frames import Guidance
from style_core.objective import Objective
from style_core.tiling import Tile, blend_weight, crop_guidance, cuts, tile_grid, whole_content_norm, whole_style_stats


def test_tiles_cover_the_picture_once_and_overlap_within_it():
    tiles = tile_grid(300, 500, 128, 40)
    owner = torch.zeros(300, 500, dtype=torch.int32)
    for t in tiles:
        assert t.bottom - t.top <= 128 and t.right - t.left <= 128
        assert (t.y0, t.x0) == (max(0, t.top - 48), max(0, t.left - 48))  # overlap rounded up to 48 (16s)
        assert (t.y1, t.x1) == (min(300, t.bottom + 48), min(500, t.right + 48))
        owner[t.top : t.bottom, t.left : t.right] += 1
    assert bool((owner == 1).all())


def test_the_face_box_gets_one_core_when_it_fits():
    assert cuts(1000, 256, (500, 700)) == [0, 236, 472, 728, 864, 1000]  # 472..728 holds 500..700
    assert all(not (400 < c < 700) for c in cuts(1000, 300, (400, 700)))
    assert cuts(1000, 256, (100, 600)) == [0, 250, 500, 750, 1000]  # too big for a tile: even cuts
    assert cuts(200, 256, (10, 20)) == [0, 200]


def test_blending_ramps_from_nothing_on_the_sides_that_meet_earlier_tiles():
    first, inner = Tile(0, 0, 64, 64, 0, 0, 80, 80), Tile(64, 64, 128, 128, 48, 48, 144, 144)
    assert bool((blend_weight(first, torch.device("cpu")) == 1).all())
    w = blend_weight(inner, torch.device("cpu"))[0, 0]
    assert float(w[0, 40]) < 0.02 and float(w[40, 0]) < 0.02  # the extent's top and left edges: almost nothing
    assert float(w[32:, 32:].min()) == 1.0  # from the far side of the overlap on: the tile's own result
    assert bool((w[:, -1] == w[:, 60]).all())  # right and bottom sides (later tiles' overlap): no ramp
    rows = w[:, 60]
    assert bool((rows[1:] >= rows[:-1]).all())


@pytest.mark.parametrize("loss", ["gram", "w2"])
def test_whole_statistics_accumulated_over_tiles_are_the_untiled_ones(loss):
    # relu1_1/relu2_1 see 10 px around a pixel, less than the 16 px overlap: tiling changes nothing but rounding
    layers = ["relu1_1", "relu2_1"]
    net = random_backbone("vgg19", layers, width_divisor=8)
    cfg = StyleConfig(
        style_layers=("relu1_1", "relu2_1"), content_layers=("relu2_1",), style_loss=loss, tile_overlap=16,
        autocast=False,
    )
    gen = torch.Generator().manual_seed(0)
    picture = torch.rand(1, 3, 70, 100, generator=gen)
    mask = torch.zeros(35, 50)
    mask[10:30, 5:30] = 1
    masks = {"a": mask, "b": 1 - mask}
    untiled = Objective(net, cfg, picture, [picture], ["k"], [1.0], Guidance({"a": mask, "b": 1 - mask}, [masks]))
    tiled = whole_style_stats(net, cfg, picture, masks, ["a", "b"], 32)
    plain = whole_style_stats(net, cfg, picture, {}, [None], 32)
    reference = Objective(net, cfg, picture, [picture], ["k2"], [1.0])
    for key in (("relu1_1", "a"), ("relu2_1", "b")):
        got, want = tiled[key], untiled._compute_style_stats(picture, masks)[key]
        for g, w in zip(*((got, want) if loss == "w2" else ((got,), (want,)))):
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6)
    want = reference._compute_style_stats(picture, {})[("relu2_1", None)]
    got = plain[("relu2_1", None)]
    for g, w in zip(*((got, want) if loss == "w2" else ((got,), (want,)))):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6)
    norm = whole_content_norm(net, cfg, picture, 32)["relu2_1"]
    assert norm == pytest.approx(reference.content_norm["relu2_1"], rel=1e-4)


def test_a_tile_keeps_the_whole_pictures_balance_of_regions_and_content_weight():
    mask = torch.zeros(100, 100)
    mask[:, :50] = 1
    weight_map = torch.ones(1, 1, 100, 100)
    weight_map[..., :50] = 3.0
    g = Guidance({"left": mask, "right": 1 - mask}, [{}], {"left": 1.0, "right": 0.5}, weight_map)
    tile = Tile(0, 0, 50, 40, 0, 0, 50, 40)  # all in the left half
    cropped, factor = crop_guidance(g, tile, 100, 100)
    assert list(cropped.content_masks) == ["left"]  # no sliver of a region the tile does not hold
    assert cropped.region_weights["left"] == pytest.approx(2.0)  # covers all of the tile, half of the picture
    assert factor == pytest.approx(3.0 / 2.0)  # the tile's mean content weight over the picture's


def _run(tiny_net, content_img, style_img, guidance=None, **changes):
    cfg = StyleConfig(
        size=200, start_size=32, steps=12, paint_size=64, refine_steps=2, tile_size=64, tile_overlap=16,
        checkpoint_every=4, device="cpu", autocast=False,
    ).replace(**changes)
    return list(engine.run(content_img, [style_img], cfg, backbone=tiny_net, guidance=guidance))


def test_a_tiled_run_streams_the_whole_picture_after_each_tile(tiny_net, content_img, style_img):
    frames = _run(tiny_net, content_img, style_img)
    tiled = [f for f in frames if f.scale > 64]
    assert [f.scale for f in tiled if f.event != "progress"] == [128, 200]
    assert len(tiled) > 4 and all(f.image.size == (f.scale, round(f.scale * 48 / 64)) for f in tiled)
    final = frames[-1]
    assert final.is_final and final.image.size == (200, 150) and final.step == final.total_steps
    assert all(v == v and abs(v) < float("inf") for v in final.losses.values())


def test_a_tiled_scale_changes_the_picture_and_lowers_its_loss(tiny_net, content_img, style_img):
    untouched = _run(tiny_net, content_img, style_img, size=128, refine_steps=1, paint_size=128)[-1].image
    refined = _run(tiny_net, content_img, style_img, size=128, refine_steps=4, paint_size=64)[-1].image
    assert untouched.size == refined.size
    assert untouched.tobytes() != refined.tobytes()


def test_a_guided_tiled_run_keeps_the_face_box_in_one_tile(tiny_net, content_img, style_img):
    face = torch.zeros(48, 64)
    face[10:30, 20:44] = 1
    guidance = Guidance(
        {"face": face, "rest": 1 - face},
        [{"face": torch.ones(8, 8), "rest": torch.ones(8, 8)}],
        {"face": 1.0, "rest": 0.5},
        (1 + 2 * face)[None, None],
        keep_whole=(10 / 48, 20 / 64, 30 / 48, 44 / 64),
    )
    frames = _run(tiny_net, content_img, style_img, guidance)
    assert frames[-1].image.size == (200, 150)
    tiles = tile_grid(120, 160, 64, 16, guidance.keep_whole)
    holding = [t for t in tiles if t.top <= 25 and t.bottom >= 75 and t.left <= 50 and t.right >= 110]
    assert len(holding) == 1
