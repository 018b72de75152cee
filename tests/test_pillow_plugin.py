"""The Pillow plugin, through Pillow's public API only (and one of the plugin's constants)."""

import io
import zlib

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

import kmz
from kmz import pillow_plugin


def picture(width=24, height=16, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


@pytest.fixture
def kmz_file(tmp_path):
    path = tmp_path / "x.kmz"
    kmz.encode(picture(), k=8).save(path)
    return path


def test_kmz_is_a_registered_extension():
    assert Image.registered_extensions()[".kmz"] == "KMZ"
    assert Image.MIME["KMZ"] == "image/x-kmz"


def test_open_reads_the_header_and_palette_only(kmz_file):
    with kmz_file.open("rb") as f, Image.open(f) as im:
        assert (im.format, im.mode, im.size, im.info["k"]) == ("KMZ", "P", (24, 16), 8)
        assert f.tell() == 24 + 3 * 8  # the header and the palette; the pixels wait for load()


@pytest.mark.parametrize("alpha", [False, True], ids=["rgb", "rgba"])
@pytest.mark.parametrize("coding", ["raw", "ctx", "mix"])
def test_the_palette_is_there_at_open_before_load(tmp_path, coding, alpha):
    pixels = np.asarray(picture(64, 48, seed=3).convert("RGBA")).copy()
    if alpha:
        pixels[::3, :, 3] = 0
        pixels[1::3, :, 3] = 128
    path = tmp_path / "x.kmz"
    kmz.encode(pixels, k=16, coding=coding).save(path)
    expected = kmz.open(path)
    assert expected.channels == (4 if alpha else 3)
    with path.open("rb") as f, Image.open(f) as im:
        assert im.palette is not None
        assert im.palette.mode == ("RGBA" if alpha else "RGB")
        assert im.palette.tobytes() == expected.palette.tobytes()
        assert f.tell() < path.stat().st_size  # the pixels are not read yet
        im.load()
        assert im.palette.tobytes() == expected.palette.tobytes()
        assert np.array_equal(np.asarray(im.convert("RGBA")), expected.to_pil().convert("RGBA"))


def test_a_mix_palette_longer_than_the_first_read_is_read_on(tmp_path, monkeypatch):
    path = tmp_path / "x.kmz"
    picture(64, 48).save(path, k=64, coding="mix")
    monkeypatch.setattr(pillow_plugin, "_MIX_PALETTE_MARGIN", 1 - 3 * 64)  # a first read of 1 byte
    with Image.open(path) as im:
        assert im.palette.tobytes() == kmz.open(path).palette.tobytes()


@pytest.mark.parametrize("coding", ["raw", "ctx", "mix"])
def test_a_file_cut_inside_its_palette_opens_without_one_and_fails_on_load(tmp_path, coding):
    path = tmp_path / "x.kmz"
    picture().save(path, k=64, coding=coding)
    with Image.open(io.BytesIO(path.read_bytes()[:24 + 40])) as im:
        assert im.palette is None
        # A mix file's length is not fixed by its header: its damage shows at the checksum.
        damage = "checksum mismatch" if coding == "mix" else "truncated: file is 64 bytes"
        with pytest.raises(kmz.DamagedImageError, match=rf"^damaged \.kmz file: {damage}"):
            im.load()


def test_open_of_a_file_cut_after_its_header_fails_only_on_load(kmz_file):
    with Image.open(io.BytesIO(kmz_file.read_bytes()[:24])) as im:
        assert im.size == (24, 16) and im.palette is None
        with pytest.raises(OSError, match=r"^damaged \.kmz file: truncated: file is 24 bytes"):
            im.load()


def test_load_gives_the_decoded_pixels_and_palette(kmz_file):
    expected = kmz.open(kmz_file)
    with Image.open(kmz_file) as im:
        assert np.array_equal(np.asarray(im), expected.indices)
        assert im.getpalette() == expected.palette.reshape(-1).tolist()
        assert np.array_equal(np.asarray(im.convert("RGB")), expected.to_array())


@pytest.mark.parametrize("coding", ["ctx", "mix"])
def test_coded_files_save_open_and_load(tmp_path, coding):
    path = tmp_path / "x.kmz"
    picture().save(path, k=8, coding=coding)
    expected = kmz.open(path)
    assert expected.coding == coding
    with Image.open(path) as im:
        assert (im.format, im.mode, im.size, im.info["k"]) == ("KMZ", "P", (24, 16), 8)
        assert np.array_equal(np.asarray(im), expected.indices)
        assert np.array_equal(np.asarray(im.convert("RGB")), expected.to_array())
    body = path.read_bytes()[:-5]  # a payload byte short, with a valid checksum
    with Image.open(io.BytesIO(body + zlib.crc32(body).to_bytes(4, "big"))) as im:
        message = r"^damaged \.kmz file: truncated: the coded data ends before pixel"
        with pytest.raises(OSError, match=message) as caught:
            im.load()
    assert isinstance(caught.value.__cause__, kmz.LengthError)


def test_more_than_256_colours_open_as_rgb(tmp_path):
    path = tmp_path / "big.kmz"
    rng = np.random.default_rng(5)
    image = kmz.KmzImage(rng.integers(0, 256, (300, 3), dtype=np.uint8), rng.integers(0, 300, (9, 40)))
    image.save(path)
    with Image.open(path) as im:
        assert im.mode == "RGB"
        assert np.array_equal(np.asarray(im), image.to_array())


def test_save_passes_encode_options(tmp_path):
    source = picture()
    source.save(tmp_path / "a.kmz", k=5, seed=3)
    assert kmz.open(tmp_path / "a.kmz").tobytes() == kmz.encode(source, k=5, seed=3).tobytes()
    source.save(tmp_path / "b.kmz")  # the encoder's defaults
    assert kmz.open(tmp_path / "b.kmz").k == 64
    source.save(tmp_path / "c.kmz", max_bytes=200, optimize=True)  # unknown options are ignored
    assert (tmp_path / "c.kmz").stat().st_size <= 200
    assert kmz.open(tmp_path / "c.kmz").k == kmz.encode(source, max_bytes=200).target.k


def test_save_all_saves_one_frame_and_refuses_more(tmp_path):
    image = picture()
    image.save(tmp_path / "one.kmz", save_all=True, k=8)
    assert (tmp_path / "one.kmz").read_bytes() == kmz.encode(image, k=8).tobytes()
    with pytest.raises(ValueError, match=r"^a \.kmz file holds one image, not 3 frames \(save one frame, "):
        image.save(tmp_path / "three.kmz", save_all=True, append_images=[picture(seed=1), picture(seed=2)])
    assert not (tmp_path / "three.kmz").exists()
    gif = tmp_path / "anim.gif"
    image.save(gif, save_all=True, append_images=[picture(seed=1)])
    with Image.open(gif) as anim, pytest.raises(ValueError, match="not 2 frames"):
        anim.save(tmp_path / "anim.kmz", save_all=True)


def test_save_then_open_round_trips_an_image_with_few_colours(tmp_path):
    pixels = np.array([[[255, 0, 0], [0, 0, 255]], [[0, 255, 0], [255, 0, 0]]], dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(tmp_path / "few.kmz", k=16)
    with Image.open(tmp_path / "few.kmz") as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), pixels)


def test_a_file_that_is_not_kmz_is_unidentified(tmp_path):
    path = tmp_path / "not.kmz"
    path.write_bytes(b"just some text, not an image at all\n")
    with pytest.raises(UnidentifiedImageError):
        Image.open(path)


def test_a_png_named_kmz_still_opens_as_png(tmp_path):
    picture().save(tmp_path / "png.kmz", format="PNG")
    with Image.open(tmp_path / "png.kmz") as im:
        assert im.format == "PNG"


def test_a_damaged_pixel_area_raises_oserror_carrying_the_kmz_error(kmz_file):
    data = bytearray(kmz_file.read_bytes())
    data[-1] ^= 1
    with Image.open(io.BytesIO(bytes(data))) as im:
        with pytest.raises(OSError, match=r"^damaged \.kmz file: checksum mismatch") as caught:
            im.load()
    assert isinstance(caught.value, kmz.DamagedImageError)
    assert isinstance(caught.value, kmz.FormatError)
    assert isinstance(caught.value.__cause__, kmz.ChecksumError)


def test_an_image_over_the_pixel_limit_is_a_decompression_bomb_not_damage(kmz_file, monkeypatch):
    monkeypatch.setattr(kmz, "MAX_IMAGE_PIXELS", 100)  # the file is 24 x 16 = 384 pixels
    with Image.open(kmz_file) as im:
        with pytest.raises(Image.DecompressionBombError) as caught:
            im.load()
    assert str(caught.value) == ("image is 24 x 16 = 384 pixels, more than twice the limit of 100 pixels "
                                 "(a possible decompression bomb)")
    assert isinstance(caught.value.__cause__, kmz.PixelLimitError)


def test_verify_checks_the_length_and_checksum(kmz_file):
    with Image.open(kmz_file) as im:
        im.verify()
    data = kmz_file.read_bytes()
    flipped = bytearray(data)
    flipped[-10] ^= 1
    for damaged, message in ((bytes(flipped), "checksum mismatch"), (data[:-1], "truncated: file is")):
        with Image.open(io.BytesIO(damaged)) as im:
            with pytest.raises(kmz.DamagedImageError, match=rf"^damaged \.kmz file: {message}"):
                im.verify()


def test_a_damaged_header_raises_oserror_on_open(kmz_file):
    data = bytearray(kmz_file.read_bytes())
    data[8] = 2  # version
    with pytest.raises(OSError, match=r"unknown format version 2") as caught:
        Image.open(io.BytesIO(bytes(data)))
    assert isinstance(caught.value.__cause__, kmz.VersionError)
