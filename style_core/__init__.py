"""style_core: a streaming Gatys-family neural style transfer engine on real VGG weights."""

from .config import PRESETS, ConfigError, StyleConfig, preset
from .engine import Frame, Guidance, StylizeError, stylize
from .images import ImageError, load_image, save_image

__all__ = [
    "PRESETS",
    "ConfigError",
    "Frame",
    "Guidance",
    "ImageError",
    "StyleConfig",
    "StylizeError",
    "load_image",
    "preset",
    "save_image",
    "stylize",
]
