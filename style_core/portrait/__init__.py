"""Portrait mode: faces and landmarks (dlib), region masks, a landmark warp, a cartoon finish, identity score."""

from .faces import Face, FaceError, find_faces, identity_distance
from .pipeline import stylize_portrait

__all__ = ["Face", "FaceError", "find_faces", "identity_distance", "stylize_portrait"]
