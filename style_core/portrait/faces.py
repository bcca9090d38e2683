"""Face boxes, 68 landmarks and 128-D identity embeddings from dlib, entirely offline.

The model files ship in the `face-recognition-models` wheel; they are found by the package's location because
importing it needs `pkg_resources`, which new setuptools no longer has.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

DETECT_LONG_SIDE = 640  # HOG looks on a copy this size, upsampled once: faces down to ~40 px of it (0.1-0.2 s)
CNN_LONG_SIDE = 352  # the CNN detector (faces HOG misses) costs ~O(pixels): ~0.65 s at 352 px on one idle core
CACHE_SIZE = 32  # pictures whose faces are remembered (the upload's detection serves the run)
SAME_PERSON = 0.6  # dlib's threshold: embeddings closer than this are the same person
_lock = threading.Lock()  # dlib's models are not documented as thread-safe


class FaceError(RuntimeError):
    """Face models missing or unusable; portrait mode falls back to plain mode with this message."""


@dataclass(frozen=True)
class Face:
    """One face: box (left, top, right, bottom) and 68 landmarks (x, y), in the image's pixels."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    detector: str

    @property
    def area(self) -> float:
        left, top, right, bottom = self.box
        return max(0.0, right - left) * max(0.0, bottom - top)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]


def models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceError("face models not installed (pip install face-recognition-models dlib-bin)")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


@lru_cache(maxsize=1)
def _models():
    try:
        import dlib
    except ImportError:
        raise FaceError("dlib is not installed (pip install dlib-bin)") from None
    root = models_dir()
    return (
        dlib,
        dlib.get_frontal_face_detector(),
        dlib.cnn_face_detection_model_v1(str(root / "mmod_human_face_detector.dat")),
        dlib.shape_predictor(str(root / "shape_predictor_68_face_landmarks.dat")),
        dlib.face_recognition_model_v1(str(root / "dlib_face_recognition_resnet_model_v1.dat")),
    )


def _small(img: Image.Image, long_side: int = DETECT_LONG_SIDE) -> tuple[np.ndarray, float]:
    scale = min(1.0, long_side / max(img.size))
    if scale < 1.0:
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"))), scale


_cache: OrderedDict[tuple[str, bool, int], list[Face]] = OrderedDict()
_cache_lock = threading.Lock()


def load_models():
    """(dlib, HOG detector, CNN detector, landmark predictor, recognizer), loaded once: a benchmark loads them before
    it times anything."""
    return _models()


def clear_cache() -> None:
    """Forget every picture's faces and embeddings (a benchmark's first look, again)."""
    with _cache_lock:
        _cache.clear()
        _descriptors.clear()


def digest(img: Image.Image) -> str:
    """The picture's content digest (pixels and size): the same upload gives the same key however it arrives."""
    h = hashlib.blake2b(img.convert("RGB").tobytes(), digest_size=16)
    h.update(f"{img.size}".encode())
    return h.hexdigest()


def find_faces(img: Image.Image, use_cnn: bool = True, upsample: int = 1) -> list[Face]:
    """Faces, largest first: the HOG detector, then the CNN one (which also finds cartoon faces).

    Boxes come from small copies (detection is what costs); the landmarks are refined on the full-size picture.
    Results are cached by content digest, so a picture the upload looked at is not looked at again by the run.
    `upsample` 0 halves HOG's reach (faces from ~80 px of the 640 px copy) for a quarter of its time."""
    key = (digest(img), use_cnn, upsample)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return list(_cache[key])
    faces = _detect(img, use_cnn, upsample)
    with _cache_lock:
        _cache[key] = faces
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return list(faces)


SECOND_FACE_SCORE = 0.3  # HOG's score below which a face beside a clearly better one is taken for a false find
SECOND_FACE_SHARE = 0.25  # ... or below this share of the best face's score


def _confident(rects, scores) -> list:
    """HOG's finds without the weak ones beside a strong one: a round badge on a shirt scores 0.1 next to its
    wearer's 1.2 (measured) and would be painted as a second face. The best find always stays (a drawn face may
    score 0.1 and be the only one)."""
    if not len(rects):
        return []
    best = max(scores)
    floor = min(best, max(SECOND_FACE_SCORE, SECOND_FACE_SHARE * best))
    return [r for r, score in zip(rects, scores) if score >= floor]


def _detect(img: Image.Image, use_cnn: bool, upsample: int) -> list[Face]:
    dlib, hog, cnn, predictor, _ = _models()
    array, scale = _small(img)
    full = np.ascontiguousarray(np.asarray(img.convert("RGB")))
    with _lock:
        rects, detector = _confident(*hog.run(array, upsample, 0.0)[:2]), "hog"
        if not rects and use_cnn:
            array, scale = _small(img, CNN_LONG_SIDE)
            rects, detector = [d.rect for d in cnn(array, 0)], "cnn"
        faces = []
        for r in rects:
            box = (r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale)
            shape = predictor(full, dlib.rectangle(*(round(v) for v in box)))
            points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
            faces.append(Face(box, points, detector))
    return sorted(faces, key=lambda f: f.area, reverse=True)


_descriptors: OrderedDict[tuple[str, tuple[float, ...]], np.ndarray] = OrderedDict()


def descriptor(img: Image.Image, face: Face) -> np.ndarray:
    """dlib's 128-D embedding of one face, cached by the picture's content and the face's box: the identity guard
    scores every result against the photo's face, and a photo painted again (another style, other settings) costs
    its embedding once (about 0.1 s on one core, holding the interpreter)."""
    key = (digest(img), tuple(face.box))
    with _cache_lock:
        if key in _descriptors:
            _descriptors.move_to_end(key)
            return _descriptors[key].copy()
    dlib, _, _, predictor, recognizer = _models()
    array, scale = _small(img)
    left, top, right, bottom = (round(v * scale) for v in face.box)
    with _lock:
        shape = predictor(array, dlib.rectangle(left, top, right, bottom))
        value = np.array(recognizer.compute_face_descriptor(array, shape, 1))
    with _cache_lock:
        _descriptors[key] = value
        while len(_descriptors) > CACHE_SIZE:
            _descriptors.popitem(last=False)
    return value.copy()


def identity_distance(
    reference: Image.Image,
    candidate: Image.Image,
    reference_face: Face | None = None,
    reference_descriptor: np.ndarray | None = None,
) -> float | None:
    """Embedding distance between the reference's face and the candidate's largest face (None: no face found).

    `reference_descriptor` saves recomputing the reference's embedding when one photo is scored many times."""
    ref_face = reference_face or next(iter(find_faces(reference)), None)
    faces = find_faces(candidate)
    if ref_face is None or not faces:
        return None
    ref = descriptor(reference, ref_face) if reference_descriptor is None else reference_descriptor
    return float(np.linalg.norm(ref - descriptor(candidate, faces[0])))


def describe_identity(distance: float | None) -> str:
    """Plain words for the app and the CLI."""
    if distance is None:
        return "identity: no face found in the result"
    verdict = "same person" if distance < SAME_PERSON else "may not read as the same person"
    return f"{verdict}: {distance:.2f} (below {SAME_PERSON} means same person)"
