"""Faces with the real dlib models and the shared photos (issue #14): detection cached and fast enough, a tilted face
found and cut upright, every face of a group painted and scored. The group is built here at run time; nothing of
the shared photos is saved in the project."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from style_core import preset, stylize
from style_core.images import load_image, resize_long_side
from style_core.portrait import crops
from style_core.portrait.align import find_faces_any_roll, roll_degrees
from style_core.portrait.crops import face_crop
from style_core.portrait.faces import find_faces

pytestmark = pytest.mark.integration
GROUP = ["brad_pitt.jpg", "077417.jpg", "unsplash-rDEOVtE7vOs.jpg"]


def test_detection_is_cached_by_content(data_dir):
    img = resize_long_side(load_image(data_dir / "Cartoons_00167_01.jpg"), 1024)
    first = find_faces(img)
    started = time.perf_counter()
    again = find_faces(img.copy())  # another object, the same pixels
    assert time.perf_counter() - started < 0.2
    assert len(first) == len(again) == 1 and np.allclose(first[0].landmarks, again[0].landmarks)


def test_a_faces_embedding_is_cached_by_content_and_box(data_dir):
    """The identity guard embeds the photo's face at every run: a photo painted again costs it once."""
    from style_core.portrait.faces import descriptor

    img = resize_long_side(load_image(data_dir / "077417.jpg"), 1024)
    face = find_faces(img)[0]
    first = descriptor(img, face)
    started = time.perf_counter()
    again = descriptor(img.copy(), face)  # another object, the same pixels
    assert time.perf_counter() - started < 0.05
    assert np.array_equal(first, again)
    shifted = type(face)(tuple(v + 40 for v in face.box), face.landmarks, face.detector)
    assert not np.array_equal(descriptor(img, shifted), first)  # another box is another entry


@pytest.mark.parametrize("degrees", [-40, 25, 45])
def test_a_rolled_face_is_found_and_cut_upright(data_dir, degrees):
    photo = resize_long_side(load_image(data_dir / "077417.jpg"), 420)
    scene = Image.new("RGB", (800, 640), (40, 40, 40))
    scene.paste(photo, (190, 110))
    tilted = scene.rotate(degrees, resample=Image.Resampling.BICUBIC, fillcolor=(40, 40, 40))
    faces = find_faces_any_roll(tilted)
    assert faces, f"no face found rolled {degrees} degrees"
    assert abs(abs(roll_degrees(faces[0])) - abs(degrees)) < 12
    crop = face_crop(faces[0], faces[0].width)
    upright = find_faces(crop.cut(tilted))
    assert upright and abs(roll_degrees(upright[0])) < 8


def test_every_face_of_a_group_is_painted_and_scored(data_dir, monkeypatch):
    photos = [resize_long_side(load_image(data_dir / name), 200) for name in GROUP]
    photos = [p.resize((round(p.width * 200 / p.height), 200)) for p in photos]
    group = Image.new("RGB", (sum(p.width for p in photos), 200), (128, 128, 128))
    x = 0
    for p in photos:
        group.paste(p, (x, 0))
        x += p.width
    monkeypatch.setattr(crops, "MIN_FACE_PX", 96)  # small crops: a test's budget, not the product's 256
    config = preset("pixar-portrait", size=max(group.size), steps=40, background="photo")
    final = list(stylize(group, [data_dir / "Cartoons_00167_01.jpg"], config))[-1]
    assert final.image.size == group.size
    assert len(final.identities) == 3, final.message
    assert all(d is not None and d < 0.6 for d in final.identities), final.message
    assert "3 faces painted in portrait mode" in final.message
    only = list(stylize(group, [data_dir / "Cartoons_00167_01.jpg"], config.replace(face_index=2)))[-1]
    assert "3 faces found; used face 3" in only.message


def test_a_painted_crop_is_scored_where_it_is_pasted(data_dir):
    """The identity guard's measure for a face painted from a crop: the crop pasted into the picture, its face
    scored there. The photo's own crop pasted back reads as the same person; a blank painting shows no face."""
    from style_core.portrait.group import SeenInPicture, _face_in_crop

    photo = resize_long_side(load_image(data_dir / "unsplash-rDEOVtE7vOs.jpg"), 600)
    (face,) = find_faces(photo)
    out_per_picture = 384 / 600
    base = resize_long_side(photo, 384)
    crop = face_crop(face, face.width * out_per_picture)
    cut = crop.cut(photo)
    crop_face = _face_in_crop(cut, face, crop)
    seen = SeenInPicture(photo, face, cut, crop_face, crop, base, out_per_picture)
    own = seen(cut)
    assert own is not None and own < 0.3
    assert seen(Image.new("RGB", cut.size, (128, 128, 128))) is None
    pasted = seen.paste(cut)
    assert pasted.size == base.size
