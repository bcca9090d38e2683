"""What crosses between the parts of a run: the frames it yields, the guidance portrait mode gives the engine,
and the one error type a run raises for the user. Imported by the engine, the portrait pipeline and the facade;
imports nothing of theirs."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from PIL import Image

LOSS_TERMS = ("content", "style", "tv", "total")


class StylizeError(RuntimeError):
    """A run that cannot go on; the message is meant for the user."""


@dataclass
class Frame:
    """One look at the picture being painted."""

    image: Image.Image
    step: int
    total_steps: int
    scale: int  # long side of the current scale, px
    scale_index: int
    num_scales: int
    losses: dict[str, float]
    elapsed: float
    is_final: bool
    event: str = "progress"  # "progress", "scale" (a scale finished) or "final"
    message: str = ""  # set when the run had to recover from a fault, or fell back to plain mode
    identity: float | None = None  # portrait mode, final frame: face embedding distance to the photo
    identities: tuple[float | None, ...] = ()  # portrait mode, several faces: each face's distance, in face order
    painting: str = ""  # a run of several paintings: which one this frame is from ("the whole picture", "face 1 of 2")


@dataclass
class Guidance:
    """Optional spatial control (portrait mode): soft region masks and a content-weight map.

    Masks are (H, W) tensors in [0, 1] at any resolution; they are resized per layer. Region r of the
    content is matched to region r of each style picture.
    """

    content_masks: dict[str, torch.Tensor] = field(default_factory=dict)
    style_masks: list[dict[str, torch.Tensor]] = field(default_factory=list)
    region_weights: dict[str, float] = field(default_factory=dict)
    content_weight_map: torch.Tensor | None = None
    # (top, left, bottom, right) as fractions of the picture: a tiled scale keeps this box in one tile if it can
    keep_whole: tuple[float, float, float, float] | None = None
