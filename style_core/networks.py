"""The process's feature networks: one cached backbone per configuration, and the precision a run uses.

bf16 pays on CUDA and on CPUs with bf16 instructions, AMX or AVX512-BF16 (oneDNN uses them); there a run uses a bf16
copy of the network, made once per network, while its statistics stay in float32.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import torch

from .backbone import VGGFeatures, low_precision_copy
from .config import StyleConfig
from .devices import describe, pick_device
from .weights import load_weights

BACKBONE_CACHE_SIZE = 4


@dataclass
class Backbone:
    """A feature network plus the line that says where its weights came from."""

    net: VGGFeatures
    report: str


_backbones: OrderedDict[tuple, Backbone] = OrderedDict()
_twins: weakref.WeakKeyDictionary[VGGFeatures, VGGFeatures] = weakref.WeakKeyDictionary()


def get_backbone(config: StyleConfig, device: torch.device) -> Backbone:
    """The truncated VGG for this config's layers, on `device`, cached in the process."""
    layers = tuple(dict.fromkeys((*config.content_layers, *config.style_layers)))
    key = (config.backbone, config.weights, config.weights_source, layers, config.pooling, str(device))
    if key not in _backbones:
        w = load_weights(config.backbone, config.weights, config.weights_source)
        net = VGGFeatures(w.arch, list(layers), w.state_dict, w.input_format, config.pooling).to(device)
        _backbones[key] = Backbone(net, w.report)
        while len(_backbones) > BACKBONE_CACHE_SIZE:
            _backbones.popitem(last=False)
    _backbones.move_to_end(key)
    return _backbones[key]


def warm_up(config: StyleConfig) -> str:
    """Load (and cache) the configured backbone now; returns the weights report, the device and the network's
    precision (a CPU without bf16 units runs float32, about twice as slow: worth seeing in the status line)."""
    device = pick_device(config.device)
    precision = "bf16" if config.autocast and use_autocast(device) else "float32"
    return f"{get_backbone(config, device).report} | device: {describe(device)}, {precision} network"


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 units oneDNN's convolutions use: AMX tiles (Intel Sapphire Rapids on) or
    AVX512-BF16 (AMD Zen 4 on, Intel Cooper Lake). Asked of torch itself, so it holds on any OS.

    AVX512-BF16 alone pays too: on a 2-core AMD EPYC without AMX, VGG19's forward and backward at 256 px took
    0.28 s in bf16 against 0.51 s in float32, and the 512 px portrait 66 s against 114 s."""
    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def use_autocast(device: torch.device) -> bool:
    """bf16 where it pays: CUDA, and CPUs with bf16 units (AMX or AVX512-BF16)."""
    if device.type == "cuda":
        return True
    return device.type == "cpu" and cpu_has_bf16()


def run_network(net: VGGFeatures, config: StyleConfig, device: torch.device) -> VGGFeatures:
    """The network a run evaluates: `net` itself, or its bf16 twin when `config.autocast` is on and pays here."""
    if not (config.autocast and use_autocast(device)):
        return net
    if net not in _twins:
        _twins[net] = low_precision_copy(net)
    return _twins[net]
