"""style_core: a streaming Gatys-family neural style transfer engine on real VGG weights."""

from .allocator import share_one_heap
from .api import stylize
from .config import PRESETS, ConfigError, StyleConfig, preset
from .frames import Frame, Guidance, StylizeError
from .images import ImageError, load_image, save_image
from .networks import warm_up

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
    "warm_up",
]

# Before the app's or a caller's worker threads exist: they then share the one heap whose freed blocks a run's next
# step reuses (see allocator).
share_one_heap()
