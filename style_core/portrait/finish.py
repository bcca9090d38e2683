"""The cartoon look's image operations: per-region colour transfer (skin to the style's skin palette, hair to its
hair) for the canvas, the flattened surface the painting keeps its content from, crisp eyes, the skin's edge-aware
smoothing after painting, and the identity guard's structure restore."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.ndimage import gaussian_filter, median_filter

from ..color import LUMA, color_stats, rgb_to_ycc, transfer_colors, ycc_to_rgb


def region_recoloured(
    image: np.ndarray, mask: np.ndarray, style: np.ndarray, style_mask: np.ndarray
) -> np.ndarray | None:
    """All of `image` through the colour map that takes its masked part to the palette of the masked part of `style`
    (None when either part is too small to fit one)."""
    if mask.sum() < 16 or style_mask.sum() < 16:
        return None
    picture = torch.from_numpy(image).permute(2, 0, 1)
    palette = torch.from_numpy(style).permute(2, 0, 1)
    source_stats = robust_color_stats(picture, torch.from_numpy(mask))
    target_stats = robust_color_stats(palette, torch.from_numpy(style_mask))
    return transfer_colors(picture, source_stats, target_stats).permute(1, 2, 0).numpy()


def robust_color_stats(picture: torch.Tensor, mask: torch.Tensor, spread: float = 2.5) -> tuple:
    """A region's colour mean and covariance without its outliers (strands of hair over a cheek, a shadow line):
    pixels further than `spread` standard deviations from a first fit are left out of the second."""
    mean, cov = color_stats(picture, mask)
    centred = picture.reshape(3, -1).double() - mean
    distance = (centred * torch.linalg.solve(cov, centred)).sum(0)
    inliers = mask.reshape(-1).double() * (distance < spread**2)
    return color_stats(picture, inliers) if float(inliers.sum()) >= 16 else (mean, cov)


#: How much of the colour strength each region takes: the head fully, the eyes half, the scene beside and above the
#: head fully too (`masks.scene_mask`: a drawing's white paper, a film still's plain set; look.py's face crop holds
#: it, and 077417 x Cartoons_00003 went from style_x 0.55 to 0.50 with it); the clothes keep their own colours (a
#: dark suit painted in a light-walled style's palette turned pale grey).
COLOR_REGIONS = {"skin": 1.0, "hair": 1.0, "mouth": 1.0, "brows": 1.0, "eyes": 0.5, "scene": 1.0}


def cartoon_colors(
    image: np.ndarray,
    masks: dict[str, np.ndarray],
    style: np.ndarray,
    style_masks: dict[str, np.ndarray],
    strength: float,
) -> np.ndarray:
    """Each region recoloured to the same region's palette in the style (skin to skin, lips to lips, hair to hair).

    Every region's colours are mapped from the same picture and the results mixed by the soft masks. One after the
    other, each blended over the last, a pixel shared half and half by the hair and the scene kept a quarter of its
    own colour: a pale ring of the photo's backdrop around the head."""
    mixed, weight = np.zeros_like(image), np.zeros(image.shape[:2] + (1,), image.dtype)
    for region, share in COLOR_REGIONS.items():
        if region in masks and region in style_masks and strength * share > 0:
            recoloured = region_recoloured(image, masks[region], style, style_masks[region])
            if recoloured is not None:
                alpha = np.clip(strength * share * masks[region], 0, 1)[..., None]
                mixed += alpha * recoloured
                weight += alpha
    # The masks split each pixel (the scene is part of the background), so the weights sum to at most 1.
    return mixed + (1 - np.clip(weight, 0, 1)) * image


def skin_lightness(image: np.ndarray, skin: np.ndarray) -> float | None:
    """The mean luma of the skin in `image` (H x W x 3 in [0, 1]) under its soft mask (H x W); None for too little
    skin to tell."""
    weight = float(skin.sum())
    if weight < 16:
        return None
    return float(((image @ np.array(LUMA)) * skin).sum() / weight)


def skin_toned(style: Image.Image, skin: np.ndarray, lightness: float, share: float = 1.0) -> Image.Image:
    """The style picture with its skin (soft mask of any size, laid over the picture) scaled in brightness toward the
    mean luma `lightness`, `share` of the way (0: unchanged): the style's hue and shading in the person's skin tone.
    R, G and B are scaled alike, so each pixel keeps its chromaticity, as under another light. The skin's palette
    (`cartoon_colors`) and its statistics in the painting both take it."""
    arr = np.asarray(style.convert("RGB"), dtype=np.float64) / 255.0
    mask = Image.fromarray((np.clip(skin, 0, 1) * 255 + 0.5).astype(np.uint8))
    weight = np.asarray(mask.resize(style.size, Image.Resampling.BILINEAR), dtype=np.float64)[..., None] / 255.0
    own = skin_lightness(arr, weight[..., 0])
    if own is None or own <= 0:
        return style
    factor = (own + share * (lightness - own)) / own
    out = arr * (1 - weight) + np.clip(arr * factor, 0, 1) * weight
    return Image.fromarray((out * 255 + 0.5).astype(np.uint8))


#: The hair's colours are read where its mask is at least this sure: along its soft edge it holds the wall, the
#: skin and the sky beside it, and a map fitted there too greyed white hair (0.78 for the photo's 0.92 in a test).
HAIR_CORE = 0.9


def _core(mask: np.ndarray) -> np.ndarray:
    """Where a soft mask is at least HAIR_CORE (the mask itself when that leaves too little to fit a colour map)."""
    sure = (mask >= HAIR_CORE).astype(np.float64)
    return sure if sure.sum() >= 16 else mask


def hair_toned(
    style: Image.Image, hair: np.ndarray, photo: np.ndarray, photo_hair: np.ndarray, share: float = 1.0
) -> Image.Image:
    """The style picture with its hair (soft mask of any size, laid over the picture) taken `share` of the way
    through the colour map from its hair's palette to the person's (`photo`'s under `photo_hair`): the style's strands
    and shading in the person's hair colour (white hair stays white). Unchanged when either has too little hair."""
    if share <= 0:
        return style
    arr = np.asarray(style.convert("RGB"), dtype=np.float64) / 255.0
    mask = Image.fromarray((np.clip(hair, 0, 1) * 255 + 0.5).astype(np.uint8))
    weight = np.asarray(mask.resize(style.size, Image.Resampling.BILINEAR), dtype=np.float64) / 255.0
    mapped = region_recoloured(arr, _core(weight), photo.astype(np.float64), _core(photo_hair.astype(np.float64)))
    if mapped is None:
        return style
    alpha = share * weight[..., None]
    out = arr * (1 - alpha) + np.clip(mapped, 0, 1) * alpha
    return Image.fromarray((out * 255 + 0.5).astype(np.uint8))


def guided_smooth(image: np.ndarray, radius: int, eps: float = 2e-3) -> np.ndarray:
    """He et al.'s guided filter with the picture as its own guide: flattens texture, keeps edges."""
    x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]
    k = 2 * radius + 1

    def box(t: torch.Tensor) -> torch.Tensor:  # separable: 2k reads a pixel, not k^2 (flatten: 8x faster at k=17)
        padded = F.pad(t, (radius,) * 4, mode="replicate")
        return F.avg_pool2d(F.avg_pool2d(padded, (k, 1), stride=1), (1, k), stride=1)

    mean = box(x)
    var = box(x * x) - mean * mean
    a = var / (var + eps)
    b = mean - a * mean
    out = box(a) * x + box(b)
    return out[0].permute(1, 2, 0).clamp(0, 1).numpy()


def smooth_skin(image: np.ndarray, masks: dict[str, np.ndarray], smoothing: float, face_width: float) -> np.ndarray:
    """The painted skin smoothed edge-aware (`smoothing` 0..1), so it looks rendered rather than painted over.

    The style's palette is not applied again here: it was given to the canvas before painting, and the painting
    then matches the style's statistics region by region; a colour transfer after it pulled those statistics back
    toward the photo's (measured with look.py: style_x 0.72 -> 0.81 on 077417 x Cartoons_00003)."""
    if smoothing <= 0:
        return image
    radius = max(1, round(face_width / 60))
    smooth = guided_smooth(image, radius)
    alpha = (smoothing * np.clip(masks["skin"] + 0.5 * masks["nose"], 0, 1))[..., None]
    return image * (1 - alpha) + smooth * alpha


#: The band of the photo's luminance that the identity guard restores, as Gaussian sigmas in face widths: finer than
#: `RESTORE_FINEST` is texture (pores, stubble, noise), coarser than `RESTORE_COARSEST` is broad shading and
#: lighting; what lies between is the shape of the eyes, lids, nostrils, lips and the face's contours. Measured on
#: unsplash x Cartoons_00003 at 384 px, one painting, the whole band's restore at full amount: identity / style_x
#: 0.521 / 0.516 with all of the luminance, 0.501 / 0.450 with this band only (0.482 / 0.478 from 0.005; 0.524 / 0.429
#: from 0.015; 0.512 / 0.459 up to 0.15): the same identity for less of the photo's look.
RESTORE_FINEST = 0.01
RESTORE_COARSEST = 0.1


def face_detail_restorer(
    image: np.ndarray, photo: np.ndarray, mask: np.ndarray, face_width: float
) -> Callable[[float], np.ndarray]:
    """A function of `amount` (0..1) that brings back that much of the photo's luminance structure inside `mask`,
    keeping the painted colours. The band is filtered once here: the identity guard tries up to eight amounts.

    Only the band between `RESTORE_FINEST` and `RESTORE_COARSEST` face widths (`face_width` in pixels) is replaced:
    the painting keeps its own fine texture, broad shading and brightness, and takes the photo's shapes.
    """
    if mask.sum() < 16:
        return lambda amount: image
    m = torch.from_numpy(np.clip(mask, 0, 1).astype(np.float64))
    out_t = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    ref_t = torch.from_numpy(np.ascontiguousarray(photo.transpose(2, 0, 1)))
    out_ycc, ref_ycc = rgb_to_ycc(out_t), rgb_to_ycc(ref_t)
    difference = (ref_ycc[0] - out_ycc[0]).numpy()
    fine, coarse = RESTORE_FINEST * face_width, RESTORE_COARSEST * face_width
    change = m * torch.from_numpy(gaussian_filter(difference, fine) - gaussian_filter(difference, coarse))

    def restore(amount: float) -> np.ndarray:
        if amount <= 0:
            return image
        luma = out_ycc[0] + amount * change
        restored = ycc_to_rgb(torch.cat([luma[None], out_ycc[1:]]))
        return np.clip(restored.permute(1, 2, 0).numpy(), 0, 1)

    return restore


def flatten(image: np.ndarray, radius: int, eps: float = 8e-4, passes: int = 3) -> np.ndarray:
    """The picture's surface (White-box Cartoonization's term): repeated edge-preserving smoothing takes pores,
    stubble and wrinkles away and keeps the shapes and the shading that a face is recognised by."""
    for _ in range(passes):
        image = guided_smooth(image, radius, eps)
    return image


def surface_content(
    image: np.ndarray, masks: dict[str, np.ndarray], face_width: float, strength: float
) -> tuple[np.ndarray, np.ndarray]:
    """What the painting keeps its content from: the flattened photo everywhere but the eyes, brows and mouth,
    whose shapes carry the person (`strength` 0..1 of the flattening). Returns it and the flattened photo."""
    flat = flatten(image, max(2, round(face_width / 32)))
    if strength <= 0:
        return image, flat
    detail = np.clip(masks["eyes"] + masks["brows"] + 0.6 * masks["mouth"], 0, 1)
    alpha = (strength * (1 - detail))[..., None]
    crisp = crisp_eyes(image, masks["eyes"], face_width, EYE_CONTRAST * strength)
    return crisp * (1 - alpha) + flat * alpha, flat


EYE_CONTRAST = 1.0


def crisp_eyes(image: np.ndarray, eyes: np.ndarray, face_width: float, amount: float) -> np.ndarray:
    """The eyes' local contrast raised (an unsharp mask inside the eye mask): lash lines darker, whites whiter, as
    drawn eyes are. Painting softens small shapes, and soft eye outlines read (to people, to landmarks) as small
    eyes."""
    if amount <= 0:
        return image
    sigma = max(1.0, face_width / 40)
    blurred = np.stack([gaussian_filter(image[..., c], sigma) for c in range(3)], -1)
    sharp = np.clip(image + amount * (image - blurred), 0, 1)
    return image + np.clip(eyes, 0, 1)[..., None] * (sharp - image)


SPECK_WINDOW = 5  # px: the specks are one to three pixels across
SPECK_FLOOR = 0.04  # RGB distance in [0, 1]: below it nothing counts as a speck, however smooth the style


def _stray_from_median(picture: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's RGB distance from its SPECK_WINDOW neighbourhood's median, and that median."""
    median = median_filter(picture, size=(SPECK_WINDOW, SPECK_WINDOW, 1))
    return np.linalg.norm(picture - median, axis=-1), median


def speck_threshold(style: np.ndarray, style_background: np.ndarray) -> float:
    """How far a painted background pixel may stray from its neighbourhood's median: three times as far as the
    style's own background does (its 99th percentile, where `style_background` > 0), and never less than SPECK_FLOOR.
    A painting's textured background allows the painting's texture; a drawing's smooth gradient allows none."""
    core = style_background > 0
    if not core.any():
        return SPECK_FLOOR
    stray, _ = _stray_from_median(style)
    return max(SPECK_FLOOR, 3.0 * float(np.percentile(stray[core], 99)))


def despeckle(image: np.ndarray, background: np.ndarray, threshold: float) -> np.ndarray:
    """The painted background without the isolated specks the optimizer adds where the style's background has no
    such texture (the page's first example at 256 px: pale, green and pink dots beside the face, not from the face
    square, the identity guard, the skin smoothing, the warp or bf16). A pixel further than `threshold` from its
    neighbourhood's median takes the median, in proportion to its background mask; edges, which a median keeps, and
    everything off the background stay as painted."""
    stray, median = _stray_from_median(image)
    speck = stray > threshold
    weight = (speck & (background >= 0.5)) * background
    return image + (median - image) * weight[..., None]
