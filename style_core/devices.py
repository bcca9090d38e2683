"""Which device to run on: cuda, then mps, then cpu, unless the user or STYLE_CORE_DEVICE says otherwise."""

from __future__ import annotations

import os

import torch


class DeviceError(RuntimeError):
    """The requested device is not available on this machine."""


def pick_device(preference: str | None = "auto") -> torch.device:
    pref = (preference or "auto").lower()
    if pref == "auto":
        pref = os.environ.get("STYLE_CORE_DEVICE", "auto").lower()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if pref.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError("CUDA was asked for but no CUDA GPU is available; use --device cpu or auto")
    if pref == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError("MPS was asked for but is not available; use --device cpu or auto")
    try:
        return torch.device(pref)
    except RuntimeError:
        raise DeviceError(f"unknown device '{preference}'") from None


def describe(device: torch.device) -> str:
    """A short human name: 'cpu (2 threads)', 'cuda (NVIDIA H100 80GB HBM3)'."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type
