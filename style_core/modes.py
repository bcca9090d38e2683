"""The "auto" preset: the run, not the page, decides between portrait mode and plain mode.

Faces in both pictures means portrait mode (pixar-portrait), anything else plain mode (balanced). It is decided
when the run starts, from the pictures the run paints; face detection is cached per picture, so a picture the page
already looked at on upload costs nothing here.
"""

from __future__ import annotations

from .images import ImageSource, load_image

AUTO = "auto"
PORTRAIT_PRESET = "pixar-portrait"
PLAIN_PRESET = "balanced"
AUTO_HELP = (
    "decided when you press Paint: portrait mode (pixar-portrait) when both pictures show a face, "
    "otherwise plain mode (balanced)"
)


def resolve_preset(name: str, content: ImageSource, style: ImageSource) -> tuple[str, str]:
    """(the preset that runs, why in plain words). A preset other than "auto" is the one that runs."""
    if name != AUTO:
        return name, f"{_mode(name)} ({name}), the preset chosen"
    faces = faces_in(content, style)
    if isinstance(faces, str):
        return PLAIN_PRESET, f"plain mode ({PLAIN_PRESET}): {faces}"
    in_photo, in_style = faces
    if in_photo and in_style:
        return PORTRAIT_PRESET, f"portrait mode ({PORTRAIT_PRESET}): auto found a face in both pictures"
    missing = "either picture" if not (in_photo or in_style) else "your photo" if not in_photo else "the style picture"
    return PLAIN_PRESET, f"plain mode ({PLAIN_PRESET}): auto found no face in {missing}"


def faces_in(content: ImageSource, style: ImageSource) -> tuple[bool, bool] | str:
    """Whether each picture shows a face, or why that cannot be told (face models missing)."""
    from .portrait.align import find_faces_any_roll  # dlib loads only when a face is looked for
    from .portrait.faces import FaceError, find_faces

    try:
        return bool(find_faces_any_roll(load_image(content))), bool(find_faces(load_image(style)))
    except FaceError as exc:
        return f"faces cannot be looked for here ({exc})"


def _mode(name: str) -> str:
    from .config import PRESETS

    return "portrait mode" if PRESETS.get(name, {}).get("portrait") else "plain mode"
