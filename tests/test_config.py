import math

import pytest

from style_core.config import PRESETS, ConfigError, StyleConfig, preset, scale_sizes, steps_per_scale


def test_scale_schedule_grows_by_about_sqrt2_to_the_end_size():
    cfg = StyleConfig(size=512, start_size=64)
    sizes = scale_sizes(cfg)
    assert sizes[0] == 64 and sizes[-1] == 512
    ratios = [b / a for a, b in zip(sizes, sizes[1:])]
    assert all(1.2 < r < 2.1 for r in ratios)
    assert abs(ratios[0] - math.sqrt(2)) < 0.05
    assert sizes == sorted(sizes)


def test_schedule_with_start_above_size_is_single_scale():
    assert scale_sizes(StyleConfig(size=48, start_size=64)) == [48]


def test_steps_per_scale_sum_and_favour_small_scales():
    cfg = StyleConfig(steps=300, schedule_decay=0.8)
    counts = steps_per_scale(cfg, 5)
    assert sum(counts) == 300
    assert counts[0] > counts[-1]
    assert steps_per_scale(StyleConfig(steps=3), 5) == [1, 1, 1, 1, 1]


def test_presets_validate_and_unknown_fields_are_refused():
    for name in PRESETS:
        preset(name)
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("nope")
    with pytest.raises(ConfigError, match="style_loss"):
        StyleConfig(style_loss="l1").validate()
    with pytest.raises(ConfigError, match="style_layer_weights"):
        StyleConfig(style_layer_weights=(1.0,)).validate()
