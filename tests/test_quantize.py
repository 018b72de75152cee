from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kmz
from kmz.colour import oklab_to_srgb, srgb_to_oklab
from kmz.dither import dither
from kmz.image import psnr
from kmz.quantize import nearest, quantize

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def smooth_image(height=96, width=128, seed=0):
    """A photo-like test image: gradients plus noise, thousands of colours."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height) + 64], axis=-1)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def corpus_image(name):
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"corpus image {path} not present")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.mark.parametrize("space", ["rgb", "oklab"])
def test_deterministic(space):
    pixels = smooth_image().reshape(-1, 3)
    a = quantize(pixels, 32, seed=3, space=space)
    b = quantize(pixels.copy(), 32, seed=3, space=space)
    assert np.array_equal(a.palette, b.palette)
    assert np.array_equal(a.labels, b.labels)


def test_seed_changes_the_palette():
    pixels = smooth_image().reshape(-1, 3)
    assert not np.array_equal(quantize(pixels, 32, seed=0).palette, quantize(pixels, 32, seed=1).palette)


@pytest.mark.parametrize("space", ["rgb", "oklab"])
@pytest.mark.parametrize("k", [1, 2, 16, 300])
def test_labels_in_range_and_nearest(space, k):
    pixels = smooth_image().reshape(-1, 3)
    q = quantize(pixels, k, space=space)
    assert q.palette.dtype == np.uint8 and q.palette.shape == (k, 3)
    assert q.labels.dtype == np.uint16 and q.labels.shape == (len(pixels),)
    assert q.labels.max() < k
    # Each pixel gets the nearest palette entry, measured in the chosen space.
    to_space = srgb_to_oklab if space == "oklab" else (lambda c: c.astype(np.float64))
    sample = slice(None, None, 7)  # keeps the brute-force check small
    points, entries = to_space(pixels[sample]).astype(np.float64), to_space(q.palette).astype(np.float64)
    chosen = ((points - entries[q.labels[sample]]) ** 2).sum(axis=1)
    best = ((points[:, None, :] - entries[None, :, :]) ** 2).sum(axis=2).min(axis=1)
    assert np.all(chosen <= best + 1e-3 * (1 + best))


@pytest.mark.parametrize("space", ["rgb", "oklab"])
def test_fewer_colours_than_k_is_lossless(space):
    rng = np.random.default_rng(5)
    colours = rng.integers(0, 256, (40, 3), dtype=np.uint8)
    pixels = colours[rng.integers(0, 40, 5000)]
    q = quantize(pixels, 64, space=space)
    distinct = np.unique(pixels, axis=0)
    assert np.array_equal(q.palette, distinct)  # exactly the distinct colours, sorted
    assert np.array_equal(q.palette[q.labels], pixels)


def test_exactly_k_colours_is_lossless():
    pixels = np.array([[0, 0, 0], [255, 255, 255], [10, 20, 30]] * 7, dtype=np.uint8)
    q = quantize(pixels, 3)
    assert np.array_equal(q.palette[q.labels], pixels)


def test_single_colour_image():
    q = quantize(np.full((50, 3), 7, dtype=np.uint8), 16)
    assert q.palette.tolist() == [[7, 7, 7]] and not q.labels.any()


def test_rejects_bad_arguments():
    pixels = smooth_image().reshape(-1, 3)
    with pytest.raises(ValueError):
        quantize(pixels, 0)
    with pytest.raises(ValueError):
        quantize(pixels, 16, space="hsv")
    with pytest.raises(ValueError):
        quantize(pixels.astype(np.float32), 16)


def test_quality_beats_a_poor_palette():
    """k-means must do better than a fixed uniform palette of the same size."""
    image = smooth_image()
    q = quantize(image.reshape(-1, 3), 64)
    levels = np.array([32, 96, 160, 224])
    uniform = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    crude = uniform[nearest(image.reshape(-1, 3), uniform)].reshape(image.shape)
    assert psnr(image, q.palette[q.labels].reshape(image.shape)) > psnr(image, crude) + 3


@pytest.mark.parametrize("k, margin", [(16, 2.0), (64, 2.5)])
def test_corpus_quality_beats_pillow_median_cut(k, margin):
    image = corpus_image("kodak/kodim03.png")
    q = quantize(image.reshape(-1, 3), k)
    ours = psnr(image, q.palette[q.labels].reshape(image.shape))
    median_cut = np.asarray(Image.fromarray(image).quantize(k, method=Image.Quantize.MEDIANCUT).convert("RGB"))
    assert ours > psnr(image, median_cut) + margin


def test_oklab_lowers_perceptual_error():
    image = corpus_image("kodak/kodim03.png").reshape(-1, 3)
    errors = {}
    for space in ("rgb", "oklab"):
        q = quantize(image, 16, space=space)
        errors[space] = np.linalg.norm(srgb_to_oklab(image) - srgb_to_oklab(q.palette)[q.labels], axis=1).mean()
    assert errors["oklab"] < errors["rgb"]


def test_oklab_round_trip():
    rgb = np.random.default_rng(2).integers(0, 256, (2000, 3), dtype=np.uint8)
    assert np.array_equal(np.rint(oklab_to_srgb(srgb_to_oklab(rgb))).astype(np.uint8), rgb)


def test_dither_indices_and_mean_colour():
    image = smooth_image()
    q = quantize(image.reshape(-1, 3), 8)
    indices = dither(image, q.palette)
    assert indices.shape == image.shape[:2] and indices.dtype == np.uint16
    assert indices.max() < 8
    # Error diffusion keeps the local mean colour closer to the original than
    # nearest-colour mapping does: compare 8x8 block means.
    def block_error(pixels):
        blocks = pixels.astype(np.float64).reshape(12, 8, 16, 8, 3).mean(axis=(1, 3))
        original = image.astype(np.float64).reshape(12, 8, 16, 8, 3).mean(axis=(1, 3))
        return np.abs(blocks - original).mean()

    assert block_error(q.palette[indices]) < block_error(q.palette[q.labels].reshape(image.shape))


def test_dither_short_palette_uses_only_real_entries():
    image = smooth_image(32, 32)
    palette = np.array([[0, 0, 0], [255, 255, 255]], dtype=np.uint8)
    assert set(np.unique(dither(image, palette))) <= {0, 1}
    with pytest.raises(ValueError):
        dither(image, np.zeros((300, 3), dtype=np.uint8))


def test_encode_options():
    image = smooth_image()
    plain = kmz.encode(image, k=16, seed=1)
    assert np.array_equal(plain.to_array(), kmz.encode(image, k=16, seed=1).to_array())
    dithered = kmz.encode(image, k=16, seed=1, dither=True)
    assert np.array_equal(dithered.palette, plain.palette)
    assert not np.array_equal(dithered.indices, plain.indices)
    assert kmz.encode(image, k=16, space="oklab").k == 16
    with pytest.raises(ValueError):
        kmz.encode(image, k=300, dither=True)
