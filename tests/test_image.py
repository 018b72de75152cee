"""The Python API: kmz.open, kmz.encode, kmz.frombytes and KmzImage."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kmz
from kmz import sweep, targets

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


# Misuse is ValueError, before the work ------------------------------------------------


PIXELS = np.zeros((4, 4, 3), np.uint8)


@pytest.mark.parametrize("kwargs, message", [
    ({"k": 2.5}, "k must be a whole number, not 2.5"),
    ({"k": True}, "k must be a whole number, not True"),
    ({"k": "8"}, "k must be a whole number, not '8'"),
    ({"k": 0}, "k must be between 1 and 65536, not 0"),
    ({"k": -3}, "k must be between 1 and 65536, not -3"),
    ({"seed": -1}, "seed must be at least 0, not -1"),
    ({"seed": 1.5}, "seed must be a whole number, not 1.5"),
    ({"psnr": float("nan")}, "psnr must be a finite number greater than 0, not nan"),
    ({"psnr": float("inf")}, "psnr must be a finite number greater than 0, not inf"),
    ({"psnr": -20}, "psnr must be a finite number greater than 0, not -20"),
    ({"psnr": True}, "psnr must be a finite number greater than 0, not True"),
    ({"max_bytes": 0}, "max_bytes must be at least 1, not 0"),
    ({"max_bytes": -100}, "max_bytes must be at least 1, not -100"),
    ({"max_bytes": 1e3}, "max_bytes must be a whole number, not 1000.0"),
    ({"max_pixels": -5}, "max_pixels must be a finite number greater than 0, not -5"),
    ({"max_pixels": 0}, "max_pixels must be a finite number greater than 0, not 0"),
    ({"space": "lab"}, "space must be one of rgb, oklab, not 'lab'"),
    ({"coding": "zip"}, "unknown coding 'zip'"),
    ({"frame": -1}, "frame must be at least 0, not -1"),
])
def test_misuse_is_a_value_error_naming_the_argument(kwargs, message, monkeypatch):
    monkeypatch.setattr(kmz.image, "quantize", lambda *a, **k: pytest.fail("quantized despite misuse"))
    image = Image.fromarray(PIXELS) if "frame" in kwargs else PIXELS
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        kmz.encode(image, **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"frame": -1}, "frame must be at least 0, not -1"),
    ({"frame": 1.5}, "frame must be a whole number, not 1.5"),
    ({"max_pixels": 0}, "max_pixels must be a finite number greater than 0, not 0"),
    ({"background": "nocolour"}, "unknown colour 'nocolour' (a name such as white, or #rrggbb)"),
    ({"background": "#ff000080"}, "a background must be opaque, not '#ff000080' (alpha 128)"),
    ({"strict": True}, "strict needs a quality target: psnr or max_bytes"),
])
@pytest.mark.parametrize("given", ["path", "PIL image", "array"])
def test_misuse_is_a_value_error_whatever_the_image_is_given_as(kwargs, message, given):
    # Not an ImageReadError blaming the file: the file is fine.
    with Image.open(GRAPHIC) as pil:
        with pytest.raises(ValueError) as caught:
            kmz.encode({"path": GRAPHIC, "PIL image": pil, "array": PIXELS}[given], **kwargs)
    assert type(caught.value) is ValueError and str(caught.value) == message


def test_an_array_takes_background_and_refuses_another_frame():
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, [[0, 128, 255], [255, 255, 255]]
    flat = kmz.encode(rgba, background="#0000ff").to_array()
    assert flat.shape == (2, 3, 3)
    assert flat[0].tolist() == [[0, 0, 255], [100, 0, 127], [200, 0, 0]]  # (200a + 255(255-a) + 127) // 255
    assert kmz.encode(rgba).to_array().shape == (2, 3, 4)
    assert kmz.encode(rgba, frame=0).k == kmz.encode(rgba).k
    with pytest.raises(ValueError, match="^no frame 1: an array is one image$"):
        kmz.encode(rgba, frame=1)


def test_numpy_integers_are_whole_numbers():
    assert kmz.encode(PIXELS, k=np.int64(2), seed=np.uint32(1), max_bytes=np.int32(1000)).k == 1


@pytest.mark.parametrize("call, message", [
    (lambda: targets.smallest_k_for_psnr(float("nan"), lambda k: 30.0), "goal must be a finite number"),
    (lambda: targets.largest_k_for_bytes(-1, lambda k: 100), "budget must be at least 1, not -1"),
    (lambda: targets.first_yes(lambda k: True, 2.5), "k_max must be a whole number, not 2.5"),
    (lambda: sweep.sweep(PIXELS, [2, 1.5]), "k must be a whole number, not 1.5"),
    (lambda: sweep.sweep(PIXELS, []), "ks must name at least one K"),
    (lambda: kmz.frombytes(kmz.encode(PIXELS, k=1).tobytes(), max_pixels=-1), "max_pixels must be a finite"),
])
def test_misuse_of_the_other_public_functions(call, message):
    with pytest.raises(ValueError, match="^" + message):
        call()


@pytest.mark.parametrize("call, message", [
    # An int is not taken for a file descriptor, nor bytes for a path.
    (lambda: kmz.open(123), "kmz.open takes a path or a binary file object, not int"),
    (lambda: kmz.open(None), "kmz.open takes a path or a binary file object, not NoneType"),
    (lambda: kmz.open(b"\x8bKMZ\r\n\x1a\n"),
     "kmz.open takes a path or a binary file object, not bytes (kmz.frombytes decodes a file's bytes)"),
    (lambda: kmz.open(io.StringIO("x")),
     "kmz.open takes a path or a binary file object, not a text file object (open it with 'rb')"),
    (lambda: kmz.frombytes("photo.kmz"), "kmz.frombytes takes the bytes of a .kmz file, not str (kmz.open reads a path)"),
    (lambda: kmz.frombytes(123), "kmz.frombytes takes the bytes of a .kmz file, not int"),
])
def test_an_argument_of_the_wrong_type_is_a_type_error_naming_what_is_taken(call, message):
    with pytest.raises(TypeError) as caught:
        call()
    assert str(caught.value) == message


def test_documented_exception_types_are_what_is_raised(tmp_path):
    # TargetError (strict), OutputExistsError (force=False), WriteError (unknown suffix),
    # ImageReadError (not an image), FormatError subclasses (bad bytes), OutOfMemoryError.
    pixels = photo_crop()
    with pytest.raises(kmz.TargetError) as caught:
        kmz.encode(pixels, psnr=99, strict=True, k=4)
    assert caught.value.result.k <= 4 and not caught.value.result.met
    (tmp_path / "x.kmz").write_bytes(b"x")
    with pytest.raises(kmz.OutputExistsError):
        kmz.encode(pixels, k=2).save(tmp_path / "x.kmz", force=False)
    with pytest.raises(kmz.WriteError, match=r"unknown image format for suffix '\.xyz'$"):
        kmz.encode(pixels, k=2).save(tmp_path / "x.xyz")
    with pytest.raises(kmz.ImageReadError):
        kmz.encode(tmp_path / "x.kmz")
    with pytest.raises(kmz.SignatureError):
        kmz.open(io.BytesIO(b"\x89PNG\r\n\x1a\n" + bytes(40)))
    assert issubclass(kmz.OutOfMemoryError, kmz.KmzError) and issubclass(kmz.OutOfMemoryError, MemoryError)


# The error measured while encoding ---------------------------------------------------------


@pytest.mark.parametrize("space", ["rgb", "oklab"])
@pytest.mark.parametrize("k", [1, 5, 64, 2000])
def test_quantizer_squared_error_is_the_pixels_error(k, space):
    pixels = photo_crop()
    image = kmz.encode(pixels, k=k, space=space)
    diff = pixels.astype(np.int64) - image.to_array()
    assert image.squared_error == float((diff * diff).sum())
    assert image.psnr == kmz.image.psnr(pixels, image.to_array())


def test_lossless_encode_has_no_error():
    image = kmz.encode(np.asarray(Image.open(GRAPHIC).convert("RGB")), k=256)
    assert (image.squared_error, image.psnr) == (0.0, float("inf"))


def test_dithered_error_is_measured_from_the_pixels(monkeypatch):
    pixels = photo_crop()
    monkeypatch.setattr(kmz.image, "_CHUNK", 7 * 48 * 3)  # several chunks of 7 rows, the last short
    image = kmz.encode(pixels, k=8, dither=True)
    diff = pixels.astype(np.int64) - image.to_array()
    assert image.squared_error == float((diff * diff).sum())
    assert image.squared_error > kmz.encode(pixels, k=8).squared_error  # dithering trades error for texture


def test_decoded_images_do_not_know_their_error():
    image = kmz.frombytes(kmz.encode(photo_crop(), k=4).tobytes())
    assert image.squared_error is None and image.psnr is None


def test_psnr_function_is_exact_and_checks_shapes():
    a = photo_crop()
    b = a.copy()
    b[0, 0, 0] ^= 0xFF
    b[31, 47, 2] ^= 0x0F
    mse = ((int(a[0, 0, 0]) - int(b[0, 0, 0])) ** 2 + (int(a[31, 47, 2]) - int(b[31, 47, 2])) ** 2) / a.size
    assert kmz.image.psnr(a, b) == pytest.approx(10 * np.log10(255**2 / mse), rel=1e-12)
    with pytest.raises(ValueError, match="differ in shape"):
        kmz.image.psnr(a, b[1:])


# save() to a file object -------------------------------------------------------------------


def test_save_to_a_file_object_needs_a_format_and_writes_it():
    image = kmz.encode(photo_crop(), k=16)
    kmz_bytes, png = io.BytesIO(), io.BytesIO()
    assert image.save(kmz_bytes, format="kmz") == len(image.tobytes())
    assert kmz_bytes.getvalue() == image.tobytes()
    assert image.save(png, format="PNG") == len(png.getvalue())
    assert Image.open(png).mode == "P"
    with pytest.raises(ValueError, match="needs a format"):
        image.save(io.BytesIO())
    with pytest.raises(ValueError, match="unknown image format 'NOPE'"):
        image.save(io.BytesIO(), format="nope")


class Trickle(io.BytesIO):
    """A file object that takes at most 100 bytes a write, as a pipe may; or, with
    count=False, all of them without saying how many (a write returning None)."""

    def __init__(self, count=True):
        super().__init__()
        self.count = count

    def write(self, data):
        taken = super().write(bytes(data)[:100] if self.count else data)
        return taken if self.count else None


@pytest.mark.parametrize("format", ["KMZ", "PNG"])
@pytest.mark.parametrize("count", [True, False])
def test_save_to_a_file_object_writes_the_whole_file_when_writes_take_part(format, count):
    image = kmz.encode(photo_crop(), k=16)
    whole, target = io.BytesIO(), Trickle(count)
    image.save(whole, format=format)
    assert len(whole.getvalue()) > 100
    assert image.save(target, format=format) == len(whole.getvalue())
    assert target.getvalue() == whole.getvalue()


def test_save_to_a_file_object_writes_nothing_when_the_format_fails():
    wide = kmz.KmzImage(np.zeros((2, 3), np.uint8), np.zeros((1, 70_000), np.uint16))
    target = io.BytesIO()
    with pytest.raises(kmz.WriteError, match=r"cannot write as GIF"):
        wide.save(target, format="GIF")
    assert target.getvalue() == b""
