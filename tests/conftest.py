"""Shared fixtures: a tiny random VGG-shaped network, small pictures, and the shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from style_core.backbone import random_backbone
from style_core.config import StyleConfig

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
torch.set_num_threads(min(2, os.cpu_count() or 1))


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "integration" in item.keywords and not DATA.exists():
            item.add_marker(pytest.mark.skip(reason=f"shared data not found at {DATA}"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture
def tiny_config() -> StyleConfig:
    return StyleConfig(size=48, start_size=24, steps=24, checkpoint_every=4, device="cpu").validate()


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
