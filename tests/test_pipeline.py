"""Portrait mode end to end with dlib stood in for (`find_faces`, the embeddings): what the pipeline does with the
faces it is given, not how the result looks (the look is tuned elsewhere)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from style_core import engine, stylize
from style_core.backbone import random_backbone
from style_core.config import preset
from style_core.portrait import pipeline
from style_core.portrait.faces import Face, FaceError, describe_identity
from style_core.portrait.masks import REGIONS

from .test_portrait import synthetic_landmarks

SIZE = (200, 240)  # the synthetic landmarks' picture


@pytest.fixture
def config():
    return preset("pixar-portrait", size=48, start_size=32, steps=6, checkpoint_every=2, device="cpu", autocast=False)


@pytest.fixture
def net(config):
    return random_backbone("vgg19", list(dict.fromkeys(config.content_layers + config.style_layers)))


@pytest.fixture
def pictures():
    rng = np.random.default_rng(4)
    photo = Image.fromarray((rng.random((SIZE[1], SIZE[0], 3)) * 255).astype(np.uint8))
    style = Image.fromarray((rng.random((SIZE[1], SIZE[0], 3)) ** 2 * 255).astype(np.uint8))
    return photo, style


@pytest.fixture
def engine_calls(monkeypatch):
    """Each engine run's guidance (None: a plain run)."""
    calls = []
    real = engine.run

    def spy(*args, **kwargs):
        calls.append(kwargs.get("guidance"))
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "run", spy)
    return calls


def _faces(monkeypatch, found: dict[tuple[int, int], list[Face]] | Exception, distance: float | None = 0.31):
    """`find_faces` answers from `found` by picture size, or raises; the identity score is `distance`."""

    def find_faces(img):
        if isinstance(found, Exception):
            raise found
        return found.get(img.size, [])

    monkeypatch.setattr(pipeline, "find_faces", find_faces)
    monkeypatch.setattr(pipeline, "find_faces_any_roll", find_faces)
    monkeypatch.setattr(pipeline, "descriptor", lambda *a, **k: np.zeros(128))
    monkeypatch.setattr(pipeline, "identity_distance", lambda *a, **k: distance)


def _face(scale: float = 1.0) -> Face:
    lm = synthetic_landmarks(s=scale)
    return Face((lm[:, 0].min(), lm[:, 1].min() - 40, lm[:, 0].max(), lm[:, 1].max()), lm, "test")


def test_a_face_in_both_pictures_gives_a_guided_run_and_a_scored_final_frame(
    monkeypatch, config, net, pictures, engine_calls
):
    photo, style = pictures
    style = style.resize((180, 216))  # another size, so the stand-in tells the pictures apart
    _faces(monkeypatch, {photo.size: [_face()], style.size: [_face(0.9)]})
    frames = list(stylize(photo, style, config, backbone=net))
    final = frames[-1]
    assert len(engine_calls) == 1 and engine_calls[0] is not None  # one run, guided
    guidance = engine_calls[0]
    whole_face = {"face"} if config.face_style > 0 else set()
    assert set(guidance.content_masks) == set(REGIONS) | whole_face and len(guidance.style_masks) == 1
    assert set(guidance.style_masks[0]) == set(guidance.content_masks)
    assert guidance.content_weight_map is not None
    assert [f.is_final for f in frames].count(True) == 1 and final.is_final
    assert max(final.image.size) == 48
    assert final.identity == 0.31 and describe_identity(0.31) in final.message


@pytest.mark.parametrize(
    "found, why",
    [
        ("no faces", "no face found in your photo, so it was painted in plain mode"),
        ("photo only", "no face found in the style picture, so it was painted in plain mode"),
        ("models missing", "portrait mode unavailable (dlib is not installed)"),
    ],
)
def test_without_faces_it_paints_in_plain_mode_and_says_why(
    monkeypatch, config, net, pictures, engine_calls, found, why
):
    photo, style = pictures
    style = style.resize((180, 216))
    answers = {
        "no faces": {},
        "photo only": {photo.size: [_face()]},
        "models missing": FaceError("dlib is not installed"),
    }[found]
    _faces(monkeypatch, answers)
    final = list(stylize(photo, style, config, backbone=net))[-1]
    assert engine_calls == [None]  # one plain run
    assert final.is_final and final.message.endswith(why) and final.identity is None


def test_several_faces_are_counted_and_the_chosen_one_is_said(monkeypatch, config, net, pictures, engine_calls):
    photo, style = pictures
    style = style.resize((180, 216))
    _faces(monkeypatch, {photo.size: [_face(), _face(0.5)], style.size: [_face()]})
    final = list(stylize(photo, style, config.replace(face_index=1), backbone=net))[-1]
    assert engine_calls[0] is not None and "2 faces found; used face 2" in final.message


def test_out_of_memory_in_portrait_mode_retries_the_whole_portrait_smaller(
    monkeypatch, config, net, pictures, engine_calls
):
    from style_core.objective import Objective

    photo, style = pictures
    style = style.resize((180, 216))
    _faces(monkeypatch, {photo.size: [_face()], style.size: [_face(0.9)]})
    real_call = Objective.__call__

    def call(self, image):
        if max(image.shape[-2:]) > 140:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_call(self, image)

    monkeypatch.setattr(Objective, "__call__", call)
    cfg = config.replace(size=160, start_size=160, steps=2)
    with pytest.warns(RuntimeWarning, match="out of memory at 160 px"):
        final = list(stylize(photo, style, cfg, backbone=net))[-1]
    assert len(engine_calls) == 2 and all(g is not None for g in engine_calls)  # both tries guided
    assert max(final.image.size) == 128 and final.identity == 0.31
    assert final.message.startswith("out of memory at 160 px, so it was painted at 128 px; ")
    assert final.message.endswith(describe_identity(0.31))


@pytest.mark.parametrize("hair_tone", [0.0, 1.0])
def test_hair_tone_paints_from_a_style_whose_hair_has_the_persons_colour(monkeypatch, config, net, hair_tone):
    """With `hair_tone` 1 the engine is given the style picture with its dark hair in the photo's white; at 0 the
    style picture as it is."""
    from .test_portrait import HEAD_SIZE, _head_picture

    def cap(yy, xx):  # a cap of hair over the head
        return ((xx - 150) / 80.0) ** 2 + ((yy - 125) / 80.0) ** 2 < 1

    lm, photo, _, yy, xx = _head_picture((0.2, 0.3, 0.6), cap, (0.92, 0.92, 0.9))  # white hair on blue
    _, style, skin, _, _ = _head_picture((0.85, 0.85, 0.8), cap, (0.2, 0.12, 0.06))  # dark brown hair, a pale wall
    strands = cap(yy, xx) & ~skin
    style[strands] *= 0.6 + 0.4 * np.random.default_rng(0).random((int(strands.sum()), 1))  # shaded, as hair is
    photo_img = Image.fromarray((photo * 255).astype(np.uint8))
    style_img = Image.fromarray((style * 255).astype(np.uint8))
    photo_img = photo_img.resize((330, 352))  # another size than the style's, so the stand-in tells them apart
    big = lm * 1.1
    found = {(330, 352): [Face((*big.min(0), *big.max(0)), big, "p")]}
    found[HEAD_SIZE] = [Face((*lm.min(0), *lm.max(0)), lm, "s")]
    _faces(monkeypatch, found)
    given = []
    real = engine.run

    def spy(content, styles, *args, **kwargs):
        given.append(styles)
        return real(content, styles, *args, **kwargs)

    monkeypatch.setattr(engine, "run", spy)
    list(stylize(photo_img, style_img, config.replace(hair_tone=hair_tone, identity_target=0), backbone=net))
    (styles,) = given
    painted_from = np.asarray(styles[0].convert("RGB"), float) / 255
    # The hair above the forehead, away from its soft edge (which keeps some of the style's own dark, an outline).
    crown = (((xx - 150) / 65.0) ** 2 + ((yy - 125) / 65.0) ** 2 < 1) & ~skin & (yy < lm[17:27, 1].min() - 20)
    hair = painted_from[crown].mean(0)
    if hair_tone == 0:
        assert styles[0] is style_img or np.array_equal(np.asarray(styles[0]), np.asarray(style_img))
    else:
        assert hair == pytest.approx((0.92, 0.92, 0.9), abs=0.08)
    wall = painted_from[(yy > 250) & (np.abs(xx - 150) > 130)].mean(0)
    assert wall == pytest.approx((0.85, 0.85, 0.8), abs=0.03)  # the rest of the style as it was
