"""User inputs read one way everywhere (edgeviz.inputs): arrays as given, image folders through the
recorded preprocessing, labels optional."""
import numpy as np
import pytest
from PIL import Image

from edgeviz.errors import EdgevizError
from edgeviz.inputs import preprocessing, read_inputs


def _pngs(folder, n, seed=0, size=8, mode="RGB"):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    imgs = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    for i, a in enumerate(imgs):
        Image.fromarray(a if mode == "RGB" else a[:, :, 0], mode).save(folder / f"{i}.png")
    return imgs


def test_an_unlabelled_image_folder_goes_through_the_recorded_preprocessing(tmp_path):
    imgs = _pngs(tmp_path / "imgs", 3)
    pre = preprocessing([0.5, 0.4, 0.3], [0.2, 0.25, 0.5], 3)
    x, y, note = read_inputs(tmp_path / "imgs", (3, 8, 8), pre)
    want = (imgs.transpose(0, 3, 1, 2) / 255.0 - np.array([0.5, 0.4, 0.3])[None, :, None, None]) \
        / np.array([0.2, 0.25, 0.5])[None, :, None, None]
    assert y is None and "3 images" in note
    np.testing.assert_allclose(x, want, atol=1e-6)


def test_class_subfolders_give_labels_and_grey_images_fill_colour_channels(tmp_path):
    _pngs(tmp_path / "d" / "cat", 2, mode="L")
    _pngs(tmp_path / "d" / "dog", 3, seed=1, mode="L")
    x, y, _ = read_inputs(tmp_path / "d", (3, 4, 4), None)
    assert x.shape == (5, 3, 4, 4) and list(y) == [0, 0, 1, 1, 1]
    np.testing.assert_array_equal(x[:, 0], x[:, 2])


def test_arrays_are_model_inputs_as_given(tmp_path):
    x = np.random.default_rng(0).normal(size=(4, 6, 6, 2))              # channels-last
    np.savez(tmp_path / "a.npz", x=x)
    got, y, note = read_inputs(tmp_path / "a.npz", (2, 6, 6), preprocessing([9.0], [9.0], 2))
    np.testing.assert_array_equal(got, x.transpose(0, 3, 1, 2))
    assert y is None and "as given" in note


@pytest.mark.parametrize("bad,msg", [
    (dict(x=np.full((2, 1, 4, 4), np.nan)), "NaN or infinite"),
    (dict(z=np.zeros(3)), "holds no array 'x'"),
    (dict(x=np.zeros((2, 1, 4, 4)), y=np.zeros(3)), "2 inputs but 3 labels"),
    (dict(x=np.zeros((2, 3, 5, 5))), "has shape [2, 3, 5, 5]"),
])
def test_bad_arrays_are_one_line_errors(tmp_path, bad, msg):
    np.savez(tmp_path / "b.npz", **bad)
    with pytest.raises(EdgevizError, match=None) as e:
        read_inputs(tmp_path / "b.npz", (1, 4, 4))
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_preprocessing_checks_channels_and_std():
    with pytest.raises(EdgevizError, match="has 2 values; the model takes 3"):
        preprocessing([0.1, 0.2], None, 3)
    with pytest.raises(EdgevizError, match="positive"):
        preprocessing(None, [0.0], 1)
    assert preprocessing(0.5, None, 3)["mean"] == [0.5, 0.5, 0.5]
