"""The VGG feature extractor: named layers, truncated at the deepest one used, normalising its own input.

It takes RGB in [0, 1] and knows nothing of where its weights came from; `input_format` says how the
weights expect pixels (torchvision's ImageNet mean/std, or Caffe's BGR 0..255 minus the mean).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .weights import BLOCK_SIZES

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
WIDTHS = (64, 128, 256, 512, 512)


def layer_names(arch: str) -> list[str]:
    """torchvision's `features` order, named conv1_1, relu1_1, ..., pool5."""
    names = []
    for block, count in enumerate(BLOCK_SIZES[arch], start=1):
        for j in range(1, count + 1):
            names += [f"conv{block}_{j}", f"relu{block}_{j}"]
        names.append(f"pool{block}")
    return names


class Normalize(nn.Module):
    """RGB [0,1] to what the weights were trained on."""

    def __init__(self, input_format: str) -> None:
        super().__init__()
        if input_format == "imagenet":
            mean, scale, flip = IMAGENET_MEAN, [1 / s for s in IMAGENET_STD], False
        elif input_format == "caffe":
            mean, scale, flip = [m / 255 for m in CAFFE_MEAN_BGR[::-1]], [255.0] * 3, True
        else:
            raise ValueError(f"unknown input format '{input_format}'")
        self.flip = flip
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(scale).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) * self.scale
        return x.flip(1) if self.flip else x


class VGGFeatures(nn.Module):
    """VGG16/19 `features`, cut after the deepest requested layer; returns a dict of named activations."""

    def __init__(
        self,
        arch: str,
        layers: list[str],
        state_dict: dict[str, torch.Tensor] | None = None,
        input_format: str = "imagenet",
        pooling: str = "max",
        width_divisor: int = 1,
    ) -> None:
        super().__init__()
        names = layer_names(arch)
        unknown = [n for n in layers if n not in names]
        if unknown:
            raise ValueError(f"unknown {arch} layers {unknown}; valid: {', '.join(n for n in names if 'relu' in n)}")
        if pooling not in ("max", "avg"):
            raise ValueError("pooling must be 'max' or 'avg'")
        self.arch = arch
        self.layers = list(dict.fromkeys(layers))
        self.input_format = input_format
        depth = max(names.index(n) for n in self.layers) + 1
        self.names = names[:depth]
        self.normalize = Normalize(input_format)
        modules: list[nn.Module] = []
        channels = 3
        for name in self.names:
            if name.startswith("conv"):
                width = WIDTHS[int(name[4]) - 1] // width_divisor
                modules.append(nn.Conv2d(channels, width, 3, padding=1))
                channels = width
            elif name.startswith("relu"):
                modules.append(nn.ReLU(inplace=True))
            else:
                modules.append(nn.MaxPool2d(2, ceil_mode=True) if pooling == "max" else nn.AvgPool2d(2, ceil_mode=True))
        self.features = nn.Sequential(*modules)
        if state_dict is not None:
            src = {k.split(".", 1)[1]: v for k, v in state_dict.items() if k.startswith("features.")}
            wanted = list(self.features.state_dict())
            missing = [k for k in wanted if k not in src]
            if missing:
                raise ValueError(f"the weights lack features.{missing[0]} for {arch}")
            self.features.load_state_dict({k: src[k] for k in wanted})
        self.channels_last = False  # set on low-precision twins (see low_precision_copy)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        wanted = set(self.layers)
        out: dict[str, torch.Tensor] = {}
        x = self.normalize(x)  # in the input's precision (float32)
        x = x.to(self.features[0].weight.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        for name, module in zip(self.names, self.features):
            x = module(x)
            if name in wanted:
                # A stored activation must survive the next in-place ReLU.
                out[name] = x.clone() if name.startswith("conv") else x
        return out


def low_precision_copy(net: VGGFeatures, dtype: torch.dtype = torch.bfloat16) -> VGGFeatures:
    """The same network with its convolutions stored in `dtype` (the input normalisation stays float32).

    What autocast computes, without autocast re-casting every weight at every step: its cast cache lives only as
    long as one `with autocast()` block, and on a CPU at small sizes the casts cost more than the convolutions.
    The twin runs channels-last: oneDNN's bf16 (AMX) convolutions work in that layout, so pictures and gradients
    are not reordered around every layer (measured on this 2-core CPU at 256 px: a fifth less time per run, the
    same numbers).
    """
    twin = copy.deepcopy(net)
    twin.features.to(dtype=dtype, memory_format=torch.channels_last)
    twin.channels_last = True
    return twin


def random_backbone(
    arch: str, layers: list[str], width_divisor: int = 16, seed: int = 0, pooling: str = "max"
) -> VGGFeatures:
    """A tiny VGG-shaped net with random weights, for fast unit tests."""
    torch.manual_seed(seed)
    net = VGGFeatures(arch, layers, None, "imagenet", pooling, width_divisor)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return net
