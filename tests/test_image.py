"""The Python API: kmz.open, kmz.encode, kmz.frombytes and KmzImage."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kmz

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
PHOTO = SAMPLES / "kodim03.png"
GRAPHIC = SAMPLES / "shapes.png"


def photo_crop():
    """A 48 x 32 corner of the photo: small enough to quantize fast, many colours."""
    with Image.open(PHOTO) as image:
        return np.asarray(image.convert("RGB"))[:32, :48].copy()


def test_encode_from_path_pil_and_array_give_the_same_file():
    with Image.open(GRAPHIC) as image:
        pil = image.copy()
    array = np.asarray(pil.convert("RGB"))
    files = {kmz.encode(source, k=8).tobytes() for source in (GRAPHIC, str(GRAPHIC), pil, array)}
    assert len(files) == 1


def test_attributes():
    image = kmz.encode(photo_crop(), k=16)
    assert (image.width, image.height, image.k, image.bits_per_index) == (48, 32, 16, 4)
    assert image.palette.shape == (16, 3) and image.palette.dtype == np.uint8
    assert image.indices.shape == (32, 48) and image.indices.dtype.kind == "u"
    assert int(image.indices.max()) < 16


def test_to_array_is_palette_of_indices():
    image = kmz.encode(photo_crop(), k=5)
    pixels = image.to_array()
    assert pixels.shape == (32, 48, 3) and pixels.dtype == np.uint8
    assert (pixels == image.palette[image.indices]).all()
    decoded = kmz.frombytes(image.tobytes())
    assert (decoded.to_array() == decoded.palette[decoded.indices]).all()
    assert (decoded.to_array() == pixels).all()


def test_few_colours_are_lossless_and_the_palette_is_exactly_them():
    with Image.open(GRAPHIC) as image:
        pixels = np.asarray(image.convert("RGB"))
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) == 6
    for k in (6, 7, 64, 300):
        image = kmz.encode(GRAPHIC, k=k)
        assert image.k == 6
        assert sorted(map(tuple, image.palette.tolist())) == sorted(map(tuple, colours.tolist()))
        assert (kmz.frombytes(image.tobytes()).to_array() == pixels).all()


def test_deterministic_same_seed_same_bytes():
    pixels = photo_crop()
    assert kmz.encode(pixels, k=12, seed=3).tobytes() == kmz.encode(pixels, k=12, seed=3).tobytes()


def test_tobytes_frombytes_round_trip():
    image = kmz.encode(photo_crop(), k=20)
    data = image.tobytes()
    again = kmz.frombytes(data)
    assert (again.palette == image.palette).all() and (again.indices == image.indices).all()
    assert again.tobytes() == data


def test_open_from_path_and_file_object(tmp_path):
    image = kmz.encode(photo_crop(), k=9)
    path = tmp_path / "crop.kmz"
    image.save(path)
    assert path.read_bytes() == image.tobytes()
    for source in (path, str(path)):
        assert kmz.open(source).tobytes() == image.tobytes()
    with open(path, "rb") as f:
        assert kmz.open(f).tobytes() == image.tobytes()
    assert kmz.open(io.BytesIO(image.tobytes())).tobytes() == image.tobytes()


def test_to_pil_palette_mode_up_to_256_rgb_above():
    small = kmz.KmzImage(np.array([[1, 2, 3], [200, 100, 0]], dtype=np.uint8), np.array([[0, 1, 1]]))
    pil = small.to_pil()
    assert pil.mode == "P" and pil.size == (3, 1)
    assert (np.asarray(pil.convert("RGB")) == small.to_array()).all()
    palette = np.stack([np.arange(300) % 256, np.arange(300) // 256, np.zeros(300)], axis=1).astype(np.uint8)
    big = kmz.KmzImage(palette, np.array([[0, 299], [256, 255]]))
    pil = big.to_pil()
    assert pil.mode == "RGB" and (np.asarray(pil) == big.to_array()).all()
    at_256 = kmz.KmzImage(palette[:256], np.array([[0, 255]]))
    assert at_256.to_pil().mode == "P"


@pytest.mark.parametrize("suffix, mode, exact", [(".png", "P", True), (".bmp", "P", True), (".jpg", "RGB", False)])
def test_save_chooses_the_format_by_suffix(tmp_path, suffix, mode, exact):
    image = kmz.encode(photo_crop(), k=8)
    path = tmp_path / f"out{suffix}"
    image.save(path)
    with Image.open(path) as saved:
        assert saved.format == {".png": "PNG", ".bmp": "BMP", ".jpg": "JPEG"}[suffix]
        assert saved.mode == mode
        rgb = np.asarray(saved.convert("RGB"))
    assert rgb.shape == (32, 48, 3)
    assert (rgb == image.to_array()).all() == exact


def test_save_png_above_256_colours_is_rgb_and_identical(tmp_path):
    image = kmz.encode(photo_crop(), k=300)
    assert image.k == 300
    image.save(tmp_path / "out.png")
    with Image.open(tmp_path / "out.png") as saved:
        assert saved.mode == "RGB" and (np.asarray(saved) == image.to_array()).all()


def test_save_replaces_unless_force_is_false(tmp_path):
    path = tmp_path / "x.kmz"
    path.write_bytes(b"old")
    image = kmz.encode(photo_crop(), k=2)
    with pytest.raises(kmz.OutputExistsError):
        image.save(path, force=False)
    assert path.read_bytes() == b"old"
    image.save(path)
    assert path.read_bytes() == image.tobytes()
    assert [p.name for p in tmp_path.iterdir()] == ["x.kmz"]  # no temporary file left


@pytest.mark.parametrize(
    "image, kwargs",
    [
        (np.zeros((4, 4), dtype=np.uint8), {}),  # not (H, W, 3)
        (np.zeros((4, 4, 3), dtype=np.float64), {}),  # not uint8
        (np.zeros((0, 4, 3), dtype=np.uint8), {}),  # no pixels
        (np.zeros((4, 4, 3), dtype=np.uint8), {"k": 0}),
        (np.zeros((4, 4, 3), dtype=np.uint8), {"k": 65537}),
    ],
)
def test_bad_arguments_raise_value_error(image, kwargs):
    with pytest.raises(ValueError):
        kmz.encode(image, **kwargs)


def test_kmzimage_rejects_inconsistent_arrays():
    palette = np.zeros((4, 3), dtype=np.uint8)
    with pytest.raises(ValueError):
        kmz.KmzImage(palette, np.array([[0, 4]]))  # index >= K
    with pytest.raises(ValueError):
        kmz.KmzImage(palette.astype(np.int32), np.array([[0, 1]]))
    with pytest.raises(ValueError):
        kmz.KmzImage(palette, np.array([0, 1]))  # not 2-D


def test_errors_for_bad_data_are_kmz_errors(tmp_path):
    assert issubclass(kmz.FormatError, kmz.KmzError)
    with pytest.raises(kmz.FormatError):
        kmz.frombytes(b"not a kmz file at all, but long enough to have a header")
    with pytest.raises(kmz.KmzError):
        kmz.open(tmp_path / "missing.kmz")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(kmz.KmzError):
        kmz.encode(tmp_path / "text.png")


def test_encode_honours_exif_orientation(tmp_path):
    pixels = np.zeros((2, 4, 3), dtype=np.uint8)
    pixels[0, 0] = (255, 0, 0)  # top left: red
    pixels[1, 3] = (0, 0, 255)  # bottom right: blue
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display it turned 90 degrees clockwise
    path = tmp_path / "rotated.png"
    Image.fromarray(pixels).save(path, exif=exif)
    image = kmz.encode(path, k=4)
    assert (image.width, image.height) == (2, 4)
    assert (image.to_array() == np.rot90(pixels, -1)).all()
