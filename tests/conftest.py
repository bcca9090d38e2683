"""Shared fixtures: a tiny random VGG-shaped network, small pictures, and the shared data folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from style_core import networks
from style_core.backbone import random_backbone
from style_core.config import StyleConfig

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# One thread: the unit tests' networks are tiny, and two threads on a CPU that other work shares spin against each
# other (measured: a 30-step run on the tiny network took 0.1 s with one thread, 9-20 s with two on a busy machine).
torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "integration" in item.keywords and not DATA.exists():
            item.add_marker(pytest.mark.skip(reason=f"shared data not found at {DATA}"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(autouse=True)
def cpu_without_bf16(monkeypatch):
    """Every test sees a CPU without bf16 units unless it asks for them (`bf16_cpu`): the same precision on every
    machine, whatever its CPU."""
    monkeypatch.setattr(networks, "cpu_has_bf16", lambda: False)


@pytest.fixture(autouse=True)
def colour_only_masks(request, monkeypatch):
    """Unit tests tell hair from the scene by colour alone, on their made-up pictures; tests on real pictures
    (`integration`) use the person segmenter as the app does, and tests of it switch it back on themselves."""
    from style_core.portrait import segmenter

    if "integration" not in request.keywords:
        monkeypatch.setenv(segmenter.ENV_SWITCH, "off")


@pytest.fixture
def bf16_cpu(monkeypatch):
    """A CPU with bf16 units: runs with `autocast=True` use the network's bf16 copy."""
    monkeypatch.setattr(networks, "cpu_has_bf16", lambda: True)


@pytest.fixture(params=["fp32", "bf16"])
def precision(request, monkeypatch) -> str:
    """Both precisions a CPU run can take; pass `autocast=precision == "bf16"` in the config."""
    monkeypatch.setattr(networks, "cpu_has_bf16", lambda: request.param == "bf16")
    return request.param


@pytest.fixture
def tiny_config() -> StyleConfig:
    return StyleConfig(size=48, start_size=24, steps=24, checkpoint_every=4, device="cpu", autocast=False).validate()


@pytest.fixture(scope="session")
def tiny_net():
    cfg = StyleConfig()
    return random_backbone("vgg19", list(cfg.content_layers + cfg.style_layers))


def _gradient_image(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w, yy / h, (xx + yy) / (w + h)], axis=-1)
    noise = rng.random((h, w, 3)) * 0.3
    return Image.fromarray(((base * 0.7 + noise) * 255).clip(0, 255).astype(np.uint8))


@pytest.fixture
def content_img() -> Image.Image:
    return _gradient_image(64, 48, 1)


@pytest.fixture
def style_img() -> Image.Image:
    rng = np.random.default_rng(2)
    stripes = np.broadcast_to((np.sin(np.arange(64)[None, :] / 2.0) > 0).astype(np.float64), (64, 64))
    arr = np.stack([stripes, 1 - stripes, rng.random((64, 64))], axis=-1)
    return Image.fromarray((arr * 255).astype(np.uint8))
