"""The person segmenter: MediaPipe's selfie model run in torch, where it comes from, and what the masks take from it."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from style_core import weights
from style_core.portrait import masks as masks_module
from style_core.portrait import segmenter
from style_core.portrait.masks import region_masks
from style_core.portrait.tflite_graph import _same_padding

from .test_portrait import HEAD_SIZE, _head_picture

ROOT = Path(__file__).resolve().parents[1]
# MediaPipe 0.10.21's own runtime (mp.solutions.selfie_segmentation, model 0) on examples/content_generated_face.png
# resized to 256 x 256 with PIL's bilinear filter, its mask averaged over 8 x 8 blocks: 32 x 32 values.
REFERENCE = ROOT / "tests" / "data" / "selfie_segmentation_generated_face_32.npy"


@pytest.fixture
def segmenter_on(monkeypatch, tmp_path):
    """The segmenter switched on, with an empty cache and no model loaded in this process."""
    monkeypatch.setenv(segmenter.ENV_SWITCH, "on")
    monkeypatch.setenv("STYLE_CORE_CACHE", str(tmp_path))
    monkeypatch.setattr(segmenter, "_graph", None)
    monkeypatch.setattr(segmenter, "_failed", "")
    return tmp_path


def test_same_padding_puts_the_odd_pixel_after_as_tensorflow_does():
    assert _same_padding(128, 3, 2, 1) == (0, 1)  # 128 -> 64: 1 pixel of padding, after
    assert _same_padding(128, 3, 1, 1) == (1, 1)
    assert _same_padding(64, 5, 2, 1) == (1, 2)
    assert _same_padding(16, 3, 1, 2) == (2, 2)  # dilated: a 5-pixel reach
    assert _same_padding(32, 1, 1, 1) == (0, 0)


def test_without_the_model_colour_decides_and_a_failed_download_is_not_tried_again(segmenter_on, monkeypatch):
    calls = []

    def offline(*args):
        calls.append(args)
        raise weights.WeightsError("pip could not download mediapipe==0.10.21: no network")

    monkeypatch.setattr(segmenter, "wheel_member", offline)
    picture = np.full((40, 30, 3), 0.5)
    assert segmenter.person_probability(picture) is None
    assert len(calls) == 1 and (segmenter_on / "segmenter-failed").exists()
    monkeypatch.setattr(segmenter, "_failed", "")  # a new process: the marker, not the memory, stops a retry
    with pytest.raises(weights.WeightsError, match="failed 0 min ago"):
        segmenter.fetch_model()
    assert len(calls) == 1


def test_a_file_that_is_not_the_model_is_refused(segmenter_on):
    (segmenter_on / segmenter.FILE).write_bytes(b"not a tflite file")
    with pytest.raises(weights.WeightsError, match="is not MediaPipe's selfie segmenter"):
        segmenter.fetch_model()
    assert segmenter.person_probability(np.zeros((8, 8, 3))) is None


def test_a_run_that_fails_leaves_that_picture_to_colour_alone(segmenter_on, monkeypatch):
    class Broken:
        input_shape = (1, 256, 256, 3)

        def __call__(self, x):
            raise segmenter.GraphError("CONV_2D gave shape (1, 2), the graph says (1, 3)")

    monkeypatch.setattr(segmenter, "_graph", Broken())
    assert segmenter.person_probability(np.full((40, 30, 3), 0.5)) is None


def test_switched_off_it_never_looks_for_the_model(monkeypatch):
    monkeypatch.setenv(segmenter.ENV_SWITCH, "off")
    monkeypatch.setattr(segmenter, "fetch_model", lambda: pytest.fail("looked for the model"))
    assert segmenter.person_probability(np.zeros((8, 8, 3))) is None


@pytest.mark.integration
def test_the_model_run_in_torch_gives_mediapipes_own_answer(monkeypatch):
    """The real model (from the cache, or mediapipe's wheel on PyPI) against MediaPipe's runtime's answer, stored."""
    monkeypatch.setenv(segmenter.ENV_SWITCH, "on")
    graph = segmenter._model()
    assert graph is not None, segmenter._failed
    picture = Image.open(ROOT / "examples" / "content_generated_face.png").convert("RGB")
    x = torch.from_numpy(np.asarray(picture.resize((256, 256), Image.Resampling.BILINEAR), np.float32) / 255)[None]
    mask = graph(x)[0, :, :, 0].numpy()
    pooled = mask.reshape(32, 8, 32, 8).mean((1, 3))
    reference = np.load(REFERENCE)
    assert np.abs(pooled - reference).max() < 1e-3
    assert reference.min() < 0.05 and reference.max() > 0.95  # the reference holds both a person and a scene
    # Fitted whole into the model's square, a tall picture is not squashed: the head stays where it is.
    tall = np.asarray(picture, np.float32)[:, 40:-40] / 255
    probability = segmenter.person_probability(tall)
    assert probability.shape == tall.shape[:2]
    h, w = probability.shape
    assert probability[int(0.3 * h), w // 2] > 0.9 and probability[5, 5] < 0.1


def _window_behind_a_short_haircut():
    """Red curtains, a pale window right behind a small head with a thin dark-grey cap of hair, the crown's sample
    mostly window (Obama's official portrait): (landmarks, picture, cap, window, person)."""

    def cap(yy, xx):
        return (((xx - 150) / 70.0) ** 2 + ((yy - 125) / 70.0) ** 2 < 1) & (yy < 110)

    lm, image, skin, yy, xx = _head_picture((0.6, 0.15, 0.12), cap, (0.55, 0.55, 0.57))
    head = (((xx - 150) / 70.0) ** 2 + ((yy - 125) / 70.0) ** 2 < 1) | skin
    window = (np.abs(xx - 150) < 110) & (yy < 140) & ~head
    image[window] = (0.85, 0.88, 0.92)
    body = yy > lm[8, 1] + 10
    person = (head | body | (skin & (yy > lm[8, 1]))).astype(np.float32)
    return lm, image, cap(yy, xx) & ~skin, window, person


def test_a_window_the_colour_of_pale_hair_behind_the_head_is_scene_where_the_segmenter_sees_the_person(monkeypatch):
    lm, image, cap, window, person = _window_behind_a_short_haircut()
    by_colour = region_masks(HEAD_SIZE, lm, image=image)
    assert by_colour["hair"][window].mean() > 0.2  # the premise: colour alone takes much of the window for hair
    monkeypatch.setattr(masks_module, "person_probability", lambda picture: person)
    with_person = region_masks(HEAD_SIZE, lm, image=image)
    assert np.allclose(sum(with_person.values()), 1.0, atol=1e-3)
    assert with_person["hair"][window].mean() < 0.02 and with_person["background"][window].mean() > 0.95
    assert with_person["hair"][cap].mean() > 0.6


def test_a_segmenter_that_does_not_see_the_face_is_not_listened_to(monkeypatch):
    lm, image, _, window, _ = _window_behind_a_short_haircut()
    by_colour = region_masks(HEAD_SIZE, lm, image=image)
    blind = np.zeros(image.shape[:2], np.float32)  # a drawing it was not made for: no person anywhere
    monkeypatch.setattr(masks_module, "person_probability", lambda picture: blind)
    for name, mask in region_masks(HEAD_SIZE, lm, image=image).items():
        assert np.array_equal(mask, by_colour[name]), name
