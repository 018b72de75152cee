"""The file's length is the formula's, to the byte, on a real photo: 28 + 3K + ceil(N*b/8)."""

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kmz

PHOTO = Path(__file__).resolve().parents[1] / "samples" / "kodim03.png"


@pytest.fixture(scope="module")
def crop():
    """64 x 64 of the photo, with 3,267 distinct colours: more than the largest K here."""
    with Image.open(PHOTO) as image:
        pixels = np.asarray(image.convert("RGB"))[64:128, 64:128].copy()
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 1000
    return pixels


@pytest.mark.parametrize("k", [1, 2, 3, 5, 16, 64, 255, 256, 257, 1000])
def test_length_is_the_formula_to_the_byte(crop, k, tmp_path):
    image = kmz.encode(crop, k=k)
    n, b = 64 * 64, math.ceil(math.log2(k)) if k > 1 else 0
    assert (image.k, image.bits_per_index) == (k, b)
    expected = 28 + 3 * k + math.ceil(n * b / 8)
    path = tmp_path / "crop.kmz"
    image.save(path)
    assert path.stat().st_size == expected
    assert len(image.tobytes()) == expected
    decoded = kmz.open(path)
    assert (decoded.to_array() == decoded.palette[decoded.indices]).all()
    assert (decoded.indices == image.indices).all()
