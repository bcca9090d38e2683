"""Soft region masks from 68 landmarks: face skin, eyes, brows, nose, mouth, hair/head surround, background.

The same rules run on the photo and on the style picture, so region r of one is matched to region r of the
other (the spatial control of Gatys et al. 2017). Masks are soft and sum to 1 at every pixel.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy.ndimage import gaussian_filter, label, maximum_filter

from .segmenter import person_probability

REGIONS = ("skin", "eyes", "brows", "nose", "mouth", "hair", "background")
JAW, BROW_R, BROW_L = slice(0, 17), slice(17, 22), slice(22, 27)
NOSE, EYE_R, EYE_L, MOUTH = slice(27, 36), slice(36, 42), slice(42, 48), slice(48, 60)


def _grow(points: np.ndarray, factor: float) -> np.ndarray:
    centre = points.mean(0)
    return centre + (points - centre) * factor


def face_outline(landmarks: np.ndarray) -> np.ndarray:
    """The jaw line closed over a forehead raised above the brows by a third of the brow-to-chin height."""
    jaw = landmarks[JAW]
    brows = landmarks[17:27][::-1]
    lift = 0.35 * (landmarks[8, 1] - landmarks[17:27, 1].mean())
    forehead = brows - np.array([0.0, lift])
    return np.concatenate([jaw, forehead])


def _polygon(size: tuple[int, int], points: np.ndarray, width: int = 0) -> np.ndarray:
    img = Image.new("L", size, 0)
    draw = ImageDraw.Draw(img)
    pts = [tuple(map(float, p)) for p in points]
    if width:
        draw.line(pts, fill=255, width=width, joint="curve")
    else:
        draw.polygon(pts, fill=255)
    return np.asarray(img, dtype=np.float32) / 255.0


def _ellipse(size: tuple[int, int], box: list[float]) -> np.ndarray:
    img = Image.new("L", size, 0)
    ImageDraw.Draw(img).ellipse(box, fill=255)
    return np.asarray(img, dtype=np.float32) / 255.0


def _log_density(pixels: np.ndarray, samples: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
    """Log-likelihood of (N, d) colours under a Gaussian fitted to (M, d) samples (`ridge` added to its variances)."""
    mean = samples.mean(0)
    cov = np.cov(samples.T) + ridge * np.eye(samples.shape[1])
    diff = pixels - mean
    inv = np.linalg.inv(cov)
    return -0.5 * np.einsum("ni,ij,nj->n", diff, inv, diff) - 0.5 * np.log(np.linalg.det(cov))


def head_classes(
    image: np.ndarray,
    skin: np.ndarray,
    crown: np.ndarray,
    outside: np.ndarray,
    candidates: np.ndarray,
    blur: float,
    skin_allowed: np.ndarray | None = None,
    skin_checked: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """P(hair) and P(skin) per pixel of `candidates` (the head's surround) from three colour models: skin sampled on
    the face, background beside the head, hair on the crown above the forehead (`crown`: there and on the forehead
    inside the face's outline). Crown pixels that look like the face's skin are a high forehead, not hair, and those
    that look like the background are the scene above a small or low head; both are left out of the hair sample.
    Where `skin_allowed` is 0 (long hair beside the cheeks, whose sunlit strands are skin-coloured) a pixel is hair or
    background only. Where `skin_checked` is 1 (under the chin) a pixel is skin only if it looks like the face's skin:
    a dark collar, unlike every model, had been skin there, the least unlikely of the three. None when a sample is
    too small to trust (then the head's outline alone decides)."""
    skin_px, background_px = image[skin > 0.5], image[outside > 0.5]
    if len(skin_px) < 50 or len(background_px) < 50:
        return None
    crown_px = image[crown > 0.5]
    skin_like = _log_density(crown_px, skin_px) > np.percentile(_log_density(skin_px, skin_px), 10)
    # Nor is the scene behind a small or low head, where the crown's ellipse reaches above the hair.
    scene_like = _log_density(crown_px, background_px) > np.percentile(_log_density(background_px, background_px), 10)
    hair_px = crown_px[~skin_like & ~scene_like]
    if len(hair_px) < 50:
        return None
    where = candidates > 0
    pixels = image[where]
    logs = np.stack([_log_density(pixels, px) for px in (hair_px, skin_px, background_px)])
    # Hair must look like the crown's hair, not only more like it than like skin or the wall behind: a dark shirt
    # or a shadow is not hair (its colour is rarer under the hair model than the crown's own 5th percentile).
    logs[0] = np.where(logs[0] < np.percentile(_log_density(hair_px, hair_px), 5), -np.inf, logs[0])
    if skin_checked is not None:
        unlike = (skin_checked[where] > 0) & (logs[1] < np.percentile(_log_density(skin_px, skin_px), 1))
        logs[1] = np.where(unlike & ~shaded_skin(pixels, skin_px), -np.inf, logs[1])
    if skin_allowed is not None:
        barred = skin_allowed[where] < 0.5
        # A skin-coloured strand where no skin can be (sunlit hair beside a cheek) is hair, as likely as it would
        # have been skin.
        logs[0] = np.where(barred & (logs[1] > logs[0]), logs[1], logs[0])
        logs[1] = np.where(barred, -np.inf, logs[1])
    probs = np.exp(logs - logs.max(0))
    probs /= probs.sum(0)
    # Smoothed over the candidates only (a normalised blur): a plain blur mixes in the zeros of the face inside, so
    # along the face's outline hair and skin both fell to about half, and the rest went to the background, a thin
    # rim around the forehead that took the style's scene colour (a pale line between hair and face).
    inside = _blurred(where.astype(np.float32), blur)
    out = []
    for p in probs[:2]:
        full = np.zeros(candidates.shape, np.float32)
        full[where] = p
        out.append(np.where(where, _blurred(full, blur) / np.maximum(inside, 1e-3), 0.0).astype(np.float32))
    return out[0], out[1]


#: A neck in the chin's shadow is the face's skin, darker: its hue the face skin's, its brightness at least this share
#: of the face's median. A collar (grey, blue, black) has another hue or is darker still.
SHADED_SKIN_BRIGHTNESS = 0.35


def shaded_skin(pixels: np.ndarray, skin_px: np.ndarray) -> np.ndarray:
    """Which (N, 3) pixels have the hue of the face's skin (`skin_px`), whatever their shading: their chromaticity
    (r, g over r + g + b) at least the skin sample's own 1st percentile under its model, their brightness at least
    `SHADED_SKIN_BRIGHTNESS` of the skin's median. 077436's neck, in shadow, had failed the full colour test under
    the chin and been painted as background (grey)."""

    def chroma(px: np.ndarray) -> np.ndarray:
        return px[:, :2] / np.maximum(px.sum(1, keepdims=True), 1e-3)

    # A small ridge: a face's chromaticities spread by about 0.01-0.02, and RGB's 1e-3 would let a grey collar pass
    # as the hue of a pale face.
    own = _log_density(chroma(skin_px), chroma(skin_px), ridge=1e-5)
    hue = _log_density(chroma(pixels), chroma(skin_px), ridge=1e-5) >= np.percentile(own, 1)
    return hue & (pixels.sum(1) >= SHADED_SKIN_BRIGHTNESS * np.median(skin_px.sum(1)))


def _blurred(mask: np.ndarray, radius: float) -> np.ndarray:
    """A Gaussian blur in float (no 8-bit steps: the normalised blur divides by small values near the edges)."""
    return gaussian_filter(mask, radius) if radius > 0 else mask


def _neck(size: tuple[int, int], chin: np.ndarray, cx: float, face_w: float) -> np.ndarray:
    """A soft column under the chin, a little narrower than the face (long hair falls beside it, not in front)."""
    cols, rows = np.arange(size[0], dtype=np.float32), np.arange(size[1], dtype=np.float32)
    across = np.clip((0.4 * face_w - np.abs(cols - cx)) / (0.15 * face_w), 0, 1)
    down = np.clip((rows - chin[1]) / (0.15 * face_w), 0, 1)
    return down[:, None] * across[None, :]


def skin_places(size: tuple[int, int], lm: np.ndarray, face: np.ndarray, cx: float, face_w: float) -> np.ndarray:
    """Where skin may be around the face outline: a band along it (the ears, the temples), the forehead above it up
    to any hairline, and the neck. Elsewhere in the head's surround (long hair beside the cheeks) it is hair or the
    scene."""
    # scipy's maximum filter is separable (PIL's MaxFilter costs k^2 a pixel: 0.24 s at 512 px, against 0.01 s)
    size_k = 2 * round(0.06 * face_w) + 1
    band = maximum_filter((face * 255).astype(np.uint8), size=size_k, mode="nearest").astype(np.float32) / 255.0
    cols, rows = np.arange(size[0], dtype=np.float32), np.arange(size[1], dtype=np.float32)
    brows = float(lm[17:27, 1].mean())
    forehead = (rows[:, None] < brows) * (np.abs(cols - cx)[None, :] < 0.45 * face_w)
    neck = _neck(size, lm[8], cx, face_w) > 0
    return np.maximum.reduce([band, forehead, neck]).astype(np.float32)


def crown_islands(face: np.ndarray, lm: np.ndarray, margin: int) -> np.ndarray:
    """1 on skin-coloured patches above the brows that do not join the face's own skin, widened by `margin` pixels:
    sunlit strands on the crown seen through darker hair (the astronaut's blonde crown had a patch painted as skin,
    in the style's skin colour, a pale streak in the dark hair). A forehead joins the face; such a patch is hair."""
    labels, _ = label(face > 0.5)
    height, width = face.shape
    x, y = (int(np.clip(round(v), 0, n - 1)) for v, n in zip(lm[30], (width, height)))  # the nose tip: the face's own
    own = labels[y, x]
    islands = (labels > 0) & (labels != own) & (above_brows((width, height), lm) > 0)
    if not islands.any():
        return np.zeros_like(face)
    return maximum_filter(islands.astype(np.float32), size=2 * margin + 1)


def forehead_islands(hair: np.ndarray, outline: np.ndarray) -> np.ndarray:
    """1 on the hair inside the face's outline that does not join the hair outside it: a fringe or a strand down a
    temple hangs from the hair, and a patch alone on the forehead is a shadow or a furrow in skin the hair's colour
    (Obama's official portrait: a dark patch above his left brow, painted as a lock of the style's hair)."""
    hair_in, hair_out = (hair > 0.5) & (outline > 0.5), (hair > 0.5) & (outline <= 0.5)
    labels, _ = label(hair_in | hair_out)
    joined = np.unique(labels[hair_out])
    return (hair_in & ~np.isin(labels, joined[joined > 0])).astype(np.float32)


def face_rim(size: tuple[int, int], lm: np.ndarray) -> np.ndarray:
    """Where hair may lie inside the face's outline: everything above the brows (a fringe) and the outer band of the
    face, outside the brows and the lower jaw pulled a fifth of the way in (a strand down the temple or the cheek).
    The face's middle (eyes, nose, mouth and the cheeks between them) is skin whatever its colour; the rim is told
    hair or skin by colour, its skin sample taken from that middle only. The astronaut's fringe and the strand down
    the right of unsplash's face had been painted as skin, in the style's skin colour. Measured at 384 px with
    look.py, with the hair sample's scene-like pixels left out too (`head_classes`), against the code before both:
    astronaut x 077436 skin_x 0.55 -> 0.47; style_x lower on seven of the eight pairs (brad_pitt x Cartoons_00003
    0.38 -> 0.35, 077417 x it 0.45 -> 0.42), the same on the eighth."""
    core = _polygon(size, _grow(np.concatenate([lm[17:27], lm[JAW][13:2:-1]]), 0.8))
    return np.clip(above_brows(size, lm) + 1 - core, 0, 1).astype(np.float32)


def above_brows(size: tuple[int, int], lm: np.ndarray) -> np.ndarray:
    """1 on the rows above the brows' highest point (a column of H rows, broadcast across the picture)."""
    return (np.arange(size[1], dtype=np.float32) < float(lm[17:27, 1].min()))[:, None].astype(np.float32)


def scene_mask(background: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The background above the chin (the wall, the sky, the paper around the head), fading out over a third of the
    face's width below it: what lies lower is mostly clothes and body. Never under the chin itself: what is not skin
    there is a collar (the astronaut's black one took the scene's pale grey)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    chin, face_w = float(lm[8, 1]), float(np.ptp(lm[JAW, 0])) or 1.0
    fade = max(1.0, 0.33 * face_w)
    rows = np.arange(background.shape[0], dtype=np.float32)
    size = (background.shape[1], background.shape[0])
    beside = 1 - _neck(size, lm[8], float(lm[JAW, 0].mean()), face_w)
    return (background * np.clip((chin + fade - rows) / fade, 0, 1)[:, None] * beside).astype(np.float32)


#: The segmenter's mean P(person) over the face's outline below which it is not used for that picture: it did not see
#: the face (a drawing in a style it was not trained on), and colour alone decides.
PERSON_ON_FACE = 0.6


def seen_person(image: np.ndarray, face: np.ndarray) -> np.ndarray | None:
    """P(person) from the selfie segmenter where it sees the face as a person, else None."""
    person = person_probability(image)
    if person is None or float((person * face).sum()) < PERSON_ON_FACE * float(face.sum()):
        return None
    return person


def region_masks(
    size: tuple[int, int], landmarks: np.ndarray, softness: float = 0.02, image: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Masks (H, W) in [0, 1] for each of REGIONS, from landmarks in pixels of an image of `size` (W, H).

    With the picture itself (`image`, H x W x 3 in [0, 1]) the hair is told from the background by colour, so
    a short haircut does not lend the style's hair to the sky around the head (and long hair is found below the
    head's outline), and skin-coloured pixels around the face (a high forehead, the neck) count as skin, but only on
    the person where the selfie segmenter sees one (`seen_person`); without it, the head's outline decides.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    face_w = float(np.ptp(lm[JAW, 0])) or 1.0
    face_h = float(lm[8, 1] - lm[17:27, 1].min()) or 1.0
    eyes = np.maximum(_polygon(size, _grow(lm[EYE_R], 1.8)), _polygon(size, _grow(lm[EYE_L], 1.8)))
    brow_w = max(2, round(face_w * 0.06))
    brows = np.maximum(_polygon(size, lm[BROW_R], brow_w), _polygon(size, lm[BROW_L], brow_w))
    nose = _polygon(size, _grow(np.concatenate([lm[27:28], lm[31:36][[0]], lm[31:36], lm[35:36]]), 1.25))
    nose = np.maximum(nose, _polygon(size, lm[NOSE][:4], max(2, round(face_w * 0.08))))
    mouth = _polygon(size, _grow(lm[MOUTH], 1.2))
    face = outline = _polygon(size, face_outline(lm))
    cx, cy = lm[JAW, 0].mean(), lm[27, 1]
    head_a = _ellipse(size, [cx - 0.95 * face_w, cy - 1.25 * face_h, cx + 0.95 * face_w, cy + 0.75 * face_h])
    if image is not None:
        wide = _ellipse(size, [cx - 1.3 * face_w, cy - 1.4 * face_h, cx + 1.3 * face_w, cy + 1.25 * face_h])
        top = face_outline(lm)[:, 1].min()
        crown = _ellipse(size, [cx - 0.4 * face_w, top - 0.45 * face_h, cx + 0.4 * face_w, top - 0.02 * face_h])
        outside = (1 - wide) * (np.arange(size[1])[:, None] < lm[8, 1])  # beside and above the head, not the body
        skin = face * (1 - np.clip(eyes + brows + mouth, 0, 1))
        # The face outline's rim is told by colour too: a fringe over the forehead or a strand down a temple is hair.
        rim = face_rim(size, lm) * face * (1 - np.clip(eyes + brows + mouth + nose, 0, 1))
        candidates = np.clip(wide - face + rim, 0, 1)
        allowed = np.maximum(skin_places(size, lm, face, cx, face_w), rim)
        # The hair sample: the crown above the face's outline, and the forehead inside it (a fringe, a low hairline).
        hair_sample = np.maximum(crown * (1 - face), rim * above_brows(size, lm))
        neck = _neck(size, lm[8], cx, face_w)
        classes = head_classes(
            image, skin * (1 - rim), hair_sample, outside, candidates, 0.03 * face_w, allowed, skin_checked=neck
        )
        # Off the person (the segmenter's say, where it sees this face) nothing is hair or skin, whatever its colour.
        person = seen_person(image, face)
        on_person = 1.0 if person is None else person
        if classes is not None:
            hair_p, skin_p = classes
            head_a = wide * hair_p * (1 - neck) * on_person  # a collar under the chin is not hair
            # the forehead up to the hairline, the neck
            face = np.clip(face - rim + candidates * skin_p * on_person, 0, 1)
            strands = face * crown_islands(face, lm, max(1, round(0.03 * face_w)))
            face, head_a = face - strands, np.clip(head_a + strands, 0, 1)
            patches = head_a * forehead_islands(head_a, outline)
            face, head_a = np.clip(face + patches, 0, 1), head_a - patches
        else:
            head_a = head_a * on_person

    parts = {"eyes": eyes, "brows": brows * (1 - eyes), "nose": nose, "mouth": mouth}
    taken = np.zeros_like(face)
    for name in ("eyes", "brows", "mouth", "nose"):
        parts[name] = np.clip(parts[name] - taken, 0, 1)
        taken = np.clip(taken + parts[name], 0, 1)
    parts["skin"] = np.clip(face - taken, 0, 1)
    parts["hair"] = np.clip(head_a - np.maximum(face, taken), 0, 1)
    parts["background"] = np.clip(1 - head_a - face, 0, 1)
    radius = max(1.0, softness * face_w)
    soft = {
        k: np.asarray(
            Image.fromarray((v * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32
        )
        / 255.0
        for k, v in parts.items()
    }
    total = sum(soft.values()) + 1e-6
    return {k: soft[k] / total for k in REGIONS}


def content_weight_map(masks: dict[str, np.ndarray], keep_face: float) -> np.ndarray:
    """Per-pixel content weight: features (eyes, brows, nose, mouth) count `keep_face` times skin, which counts
    more than hair and background (the gain-map idea of Selim et al. 2016)."""
    gains = {
        "eyes": keep_face,
        "mouth": keep_face,
        "brows": 0.75 * keep_face,
        "nose": 0.75 * keep_face,
        "skin": 1.0,
        "hair": 0.6,
        "background": 0.4,
    }
    return sum(gains[r] * masks[r] for r in REGIONS).astype(np.float32)
