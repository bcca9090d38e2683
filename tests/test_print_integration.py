"""Print sizes on the real VGG19, kept small: tiling forced by the settings (or by a memory cap the guard must
meet), in plain and portrait mode; the seams across tile borders must not stand out."""

from __future__ import annotations

import numpy as np
import pytest

from style_core import StyleConfig, memory, stylize
from style_core.api import plan_memory
from style_core.config import tile_above
from style_core.tiling import tile_grid

pytestmark = pytest.mark.integration


def _column_jumps(img) -> np.ndarray:
    """Mean absolute difference between each pair of neighbouring columns (0..255 units)."""
    a = np.asarray(img, dtype=np.float64)
    return np.abs(np.diff(a, axis=1)).mean(axis=(0, 2))


def test_a_tiled_print_scale_has_no_seam_at_the_tile_borders(data_dir):
    cfg = StyleConfig(size=384, start_size=64, steps=60, paint_size=192, tile_size=128, refine_steps=3, device="cpu")
    frames = list(stylize(data_dir / "tubingen.jpg", data_dir / "starry_night.jpg", cfg))
    final = frames[-1]
    assert final.is_final and final.image.size == (384, 288)
    tiled = [f for f in frames if f.scale == 384]
    assert len(tiled) >= len(tile_grid(288, 384, 128, 64))  # a frame of the whole picture after each tile
    jumps = _column_jumps(final.image)
    cuts = sorted({t.left for t in tile_grid(288, 384, 128, cfg.tile_overlap) if t.left})
    for cut in cuts:
        near = jumps[cut - 3 : cut + 2].max()
        assert near < 2.0 * np.median(jumps), (cut, near, np.median(jumps))


def test_a_memory_cap_makes_the_guard_tile_and_the_run_completes(data_dir, monkeypatch):
    # Only the guard's arithmetic is faked (what this process holds), so the cap is small and the test quick.
    monkeypatch.setattr(memory, "held_bytes", lambda device: 0)
    cfg = StyleConfig(size=512, start_size=128, steps=10, paint_size=256, device="cpu", max_memory_gb=0.75)
    plan = plan_memory(data_dir / "brad_pitt.jpg", cfg)
    assert plan.config.size == 512 and tile_above(plan.config) <= 256 and plan.config.tile_size < 1024
    assert plan.estimate <= 0.75 * memory.GB
    frames = list(stylize(data_dir / "brad_pitt.jpg", data_dir / "starry_night.jpg", cfg))
    assert max(frames[-1].image.size) == 512 and not frames[-1].message


def test_portrait_mode_paints_a_print_scale_tile_by_tile_with_the_face_in_one_tile(data_dir):
    from style_core.config import preset
    from style_core.images import load_image
    from style_core.portrait.faces import find_faces
    from style_core.portrait.pipeline import plan_portrait

    cfg = preset("pixar-portrait", size=320, steps=20, paint_size=160, tile_size=128, device="cpu")
    photo, style = load_image(data_dir / "brad_pitt.jpg"), load_image(data_dir / "Cartoons_00167_01.jpg")
    plan = plan_portrait(photo, [style], find_faces(photo)[0], [find_faces(style)[0]], cfg)
    box = plan.guidance.keep_whole
    w, h = plan.canvas.size
    tiles = tile_grid(h, w, cfg.tile_size, cfg.tile_overlap, box)
    top, left, bottom, right = box[0] * h, box[1] * w, box[2] * h, box[3] * w
    if bottom - top <= cfg.tile_size and right - left <= cfg.tile_size:
        assert any(t.top <= top and t.bottom >= bottom and t.left <= left and t.right >= right for t in tiles)
    frames = list(stylize(photo, style, cfg))
    final = frames[-1]
    assert final.is_final and max(final.image.size) == 320
    assert final.identity is not None and final.identity < 0.6, final.message
    assert any(f.scale == 320 and f.event == "progress" for f in frames)
