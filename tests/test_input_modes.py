"""The encoder's inputs: every Pillow mode, EXIF orientation, 16-bit PNG, animations,
transparency, and images that are empty, broken or not images at all."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kmz
from kmz import io
from kmz.cli import main

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def row(image):
    """The first row of convert_image's pixels flattened onto white, as a list of RGB tuples."""
    pixels, _ = io.convert_image(image, background="white")
    return [tuple(int(c) for c in p) for p in pixels[0]]


def from_row(mode, values):
    image = Image.new(mode, (len(values), 1))
    image.putdata(values)
    return image


def test_mode_1_and_l():
    assert row(from_row("1", [0, 1, 0])) == [(0, 0, 0), (255, 255, 255), (0, 0, 0)]
    assert row(from_row("L", [0, 77, 255])) == [(0, 0, 0), (77, 77, 77), (255, 255, 255)]


def test_rgb_unchanged_and_no_notes():
    image = from_row("RGB", [(1, 2, 3), (250, 128, 0)])
    pixels, notes = io.convert_image(image)
    assert pixels.tolist() == [[[1, 2, 3], [250, 128, 0]]]
    assert notes == []


def test_alpha_is_kept_by_default_and_composited_on_request():
    image = from_row("LA", [(200, 0), (200, 255), (200, 128)])
    pixels, notes = io.convert_image(image)
    assert pixels.tolist() == [[[200, 200, 200, 0], [200, 200, 200, 255], [200, 200, 200, 128]]]
    assert notes == []
    # (200 * 128 + 255 * 127) / 255 = 227.4 -> 227
    pixels, notes = io.convert_image(image, background="white")
    assert pixels[0, :, 0].tolist() == [255, 200, 227]
    assert notes == ["the image has transparency; composited onto white"]
    rgba = from_row("RGBA", [(10, 20, 30, 0), (10, 20, 30, 255), (100, 0, 200, 51)])
    assert row(rgba) == [(255, 255, 255), (10, 20, 30), (224, 204, 244)]


def test_background_colour_names_and_hex():
    rgba = from_row("RGBA", [(10, 20, 30, 0), (100, 0, 200, 51)])
    pixels, notes = io.convert_image(rgba, background="#102030")
    # (100 * 51 + 16 * 204) / 255 = 32.8 -> 33; (0 * 51 + 32 * 204) / 255 = 25.6 -> 26; ...
    assert pixels[0].tolist() == [[16, 32, 48], [33, 26, 78]]
    assert notes == ["the image has transparency; composited onto #102030"]
    assert io.convert_image(rgba, background="red")[0][0, 0].tolist() == [255, 0, 0]
    assert io.convert_image(rgba, background=(0, 0, 255))[1] == ["the image has transparency; composited onto #0000ff"]
    with pytest.raises(ValueError):
        io.convert_image(rgba, background="no such colour")


def test_opaque_alpha_gives_no_note():
    pixels, notes = io.convert_image(from_row("RGBA", [(1, 2, 3, 255)]))
    assert pixels.tolist() == [[[1, 2, 3]]] and notes == []


def test_palette_with_a_transparent_entry():
    image = from_row("P", [0, 1, 1])
    image.putpalette([9, 8, 7, 50, 60, 70])
    image.info["transparency"] = 0
    assert row(image) == [(255, 255, 255), (50, 60, 70), (50, 60, 70)]
    image.info.pop("transparency")
    assert row(image) == [(9, 8, 7), (50, 60, 70), (50, 60, 70)]


def test_pa_mode():
    image = Image.new("PA", (2, 1))
    image.putpalette([9, 8, 7, 50, 60, 70])
    image.putdata([(1, 255), (1, 0)])
    assert row(image) == [(50, 60, 70), (255, 255, 255)]


def test_cmyk_is_converted_without_colour_management():
    # R = (255 - C)(255 - K) / 255: (127 * 127) / 255 = 63.25 -> 63
    image = from_row("CMYK", [(0, 0, 0, 0), (255, 0, 0, 0), (0, 0, 0, 255), (0, 255, 255, 0), (128, 0, 0, 128)])
    pixels, notes = io.convert_image(image)
    assert [tuple(p) for p in pixels[0].tolist()] == [(255, 255, 255), (0, 255, 255), (0, 0, 0), (255, 0, 0), (63, 127, 127)]
    assert notes == ["CMYK converted to RGB without colour management"]


def test_ycbcr():
    image = from_row("YCbCr", [(128, 128, 128), (255, 128, 128), (0, 128, 128)])
    assert row(image) == [(128, 128, 128), (255, 255, 255), (0, 0, 0)]


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_16_bit_samples_are_scaled_not_clipped(mode):
    # Pillow's own convert("L") would clip 32768 and 65535 to 255 and keep 128 as 128.
    values = [0, 128, 129, 32768, 65535]
    pixels, notes = io.convert_image(from_row(mode, values))
    assert pixels[0, :, 0].tolist() == [0, 0, 1, 128, 255]
    assert (pixels[0, :, 0] == pixels[0, :, 2]).all()
    assert notes == [f"mode {mode}: samples 0-65535 scaled to 8 bits"]


def test_mode_i_clips_outside_16_bits():
    assert io.convert_image(from_row("I", [-5, 70000]))[0][0, :, 0].tolist() == [0, 255]


def test_mode_f_maps_0_to_1():
    pixels, notes = io.convert_image(from_row("F", [-1.0, 0.0, 0.25, 1.0, 7.5]))
    assert pixels[0, :, 0].tolist() == [0, 0, 64, 255, 255]
    assert notes == ["mode F: samples 0.0-1.0 scaled to 8 bits"]


def test_mode_f_maps_nan_and_infinities_to_defined_bytes(tmp_path, capsys):
    values = [float("nan"), float("inf"), float("-inf"), -float("nan"), 0.5]
    with np.errstate(all="raise"):  # no "invalid value encountered in cast"
        pixels, _ = io.convert_image(from_row("F", values))
    assert pixels[0, :, 0].tolist() == [0, 255, 0, 0, 128]
    path = tmp_path / "nan.tiff"
    from_row("F", values).save(path)
    assert main(["encode", str(path)]) == 0
    assert capsys.readouterr().err == "kmz: note: mode F: samples 0.0-1.0 scaled to 8 bits\n"
    assert kmz.open(path.with_suffix(".kmz")).to_array()[0, :, 0].tolist() == [0, 255, 0, 0, 128]


def _png(width, height, depth, colour_type, rows, trns=None):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    raw = b"".join(b"\0" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0))
            + (b"" if trns is None else chunk(b"tRNS", trns))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_16_bit_png_files(tmp_path):
    grey = tmp_path / "grey16.png"
    grey.write_bytes(_png(3, 1, 16, 0, [struct.pack(">3H", 0, 32768, 65535)]))
    pixels, notes = io.open_image(grey)
    assert pixels[0, :, 0].tolist() == [0, 128, 255]
    assert notes == ["mode I;16: samples 0-65535 scaled to 8 bits"]
    rgb = tmp_path / "rgb16.png"
    rgb.write_bytes(_png(2, 1, 16, 2, [struct.pack(">6H", 65535, 32768, 0, 0x1234, 0xFFFF, 0x00FF)]))
    pixels, notes = io.open_image(rgb)
    # Pillow reads 16-bit RGB as 8-bit RGB (the high byte of each sample).
    assert pixels.tolist() == [[[255, 128, 0], [0x12, 255, 0]]] and notes == []


def test_16_bit_png_transparent_colours_compare_at_16_bits(tmp_path, capsys):
    # The tRNS colour is clear; its 8-bit neighbours (same high bytes) stay opaque.
    grey = tmp_path / "grey16.png"
    grey.write_bytes(_png(3, 1, 16, 0, [struct.pack(">3H", 0x8000, 0x8001, 0xFFFF)], trns=struct.pack(">H", 0x8000)))
    pixels, notes = io.open_image(grey)
    assert pixels.tolist() == [[[128, 128, 128, 0], [128, 128, 128, 255], [255, 255, 255, 255]]]
    assert notes == ["mode I;16: samples 0-65535 scaled to 8 bits"]
    rgb = tmp_path / "rgb16.png"
    rgb.write_bytes(_png(3, 1, 16, 2, [struct.pack(">9H", 0x1234, 0x5678, 0x9ABC, 0x1234, 0x5678, 0x9ABD, 0xFFFF, 0, 0)],
                         trns=struct.pack(">3H", 0x1234, 0x5678, 0x9ABC)))
    expected = [[[0x12, 0x56, 0x9A, 0], [0x12, 0x56, 0x9A, 255], [255, 0, 0, 255]]]
    pixels, notes = io.open_image(rgb)
    assert pixels.tolist() == expected and notes == []
    with Image.open(rgb) as image:
        assert io.convert_image(image)[0].tolist() == expected
    assert main(["encode", str(rgb)]) == 0
    assert kmz.open(rgb.with_suffix(".kmz")).to_array().tolist() == [[[0, 0, 0, 0], *expected[0][1:]]]


def test_exif_orientation_is_applied(tmp_path):
    stored = Image.new("RGB", (3, 2), (0, 0, 0))
    stored.putpixel((0, 0), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise
    path = tmp_path / "rotated.png"
    stored.save(path, exif=exif)
    pixels, notes = io.open_image(path)
    assert pixels.shape == (3, 2, 3)
    assert pixels[0, 1].tolist() == [255, 0, 0]  # the stored top-left is now top-right
    assert pixels.sum() == 255
    assert notes == ["rotated/flipped upright as its EXIF orientation (6) says"]
    assert kmz.encode(path, k=2).size == (2, 3)


COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


@pytest.mark.parametrize("suffix", [".gif", ".png", ".webp"])
def test_animations_give_the_first_frame_or_the_one_asked_for(suffix, tmp_path, capsys):
    path = tmp_path / f"anim{suffix}"
    frames = [Image.new("RGB", (4, 4), c) for c in COLOURS]
    extra = {"lossless": True} if suffix == ".webp" else {}
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, **extra)
    pixels, notes = io.open_image(path)
    assert pixels[0, 0].tolist() == [255, 0, 0]
    assert notes == ["the image has 3 frames; encoded the first (--frame N picks another)"]
    pixels, notes = io.open_image(path, frame=2)
    assert pixels[0, 0].tolist() == [0, 0, 255] and notes == []
    with pytest.raises(kmz.ImageReadError, match=rf"anim{suffix}: no frame 3: the image has 3 frames$"):
        io.open_image(path, frame=3)
    assert main(["encode", str(path), "--frame", "1", "-o", str(tmp_path / "f1.kmz")]) == 0
    assert kmz.open(tmp_path / "f1.kmz").palette.tolist() == [[0, 255, 0]]
    assert main(["encode", str(path), "-o", str(tmp_path / "f0.kmz")]) == 0
    err = capsys.readouterr().err
    assert err == "kmz: note: the image has 3 frames; encoded the first (--frame N picks another)\n"


def _psd(composite, layers):
    """A minimal 8-bit RGB PSD (Pillow cannot write one): uncompressed, the composite
    ((H, W, 3) uint8) and full-size RGB layers of the same shape."""
    height, width = composite.shape[:2]
    records, channel_data = b"", b""
    for number, layer in enumerate(layers):
        name = bytes([2]) + b"L%d" % number + b"\0"  # a Pascal string padded to 4 bytes
        extra = struct.pack(">II", 0, 0) + name  # no mask, no blending ranges
        records += struct.pack(">4iH", 0, 0, height, width, 3)
        records += b"".join(struct.pack(">hI", c, 2 + width * height) for c in range(3))
        records += b"8BIMnorm" + bytes([255, 0, 0, 0]) + struct.pack(">I", len(extra)) + extra
        channel_data += b"".join(struct.pack(">H", 0) + layer[:, :, c].tobytes() for c in range(3))
    info = struct.pack(">h", len(layers)) + records + channel_data
    info += b"\0" * (len(info) % 2)
    layer_and_mask = struct.pack(">I", len(info)) + info + struct.pack(">I", 0)
    return (b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, height, width, 8, 3) + struct.pack(">II", 0, 0)
            + struct.pack(">I", len(layer_and_mask)) + layer_and_mask + struct.pack(">H", 0)
            + b"".join(composite[:, :, c].tobytes() for c in range(3)))


def test_psd_layers_are_frames_from_0_and_the_composite_is_the_default(tmp_path, capsys):
    red, green, blue = (np.full((2, 3, 3), c, np.uint8) for c in COLOURS)
    path = tmp_path / "layers.psd"
    path.write_bytes(_psd(blue, [red, green]))
    pixels, notes = io.open_image(path)
    assert pixels[0, 0].tolist() == [0, 0, 255]
    assert notes == ["the image has 2 layers; encoded their composite (--frame N picks layer N, from 0)"]
    pixels, notes = io.open_image(path, frame=0)
    assert pixels.tolist() == red.tolist() and notes == []
    assert io.open_image(path, frame=1)[0].tolist() == green.tolist()
    with pytest.raises(kmz.ImageReadError, match=r"layers.psd: no frame 2: the image has 2 frames$"):
        io.open_image(path, frame=2)
    assert main(["encode", str(path), "-o", str(tmp_path / "c.kmz")]) == 0
    assert kmz.open(tmp_path / "c.kmz").palette.tolist() == [[0, 0, 255]]
    assert capsys.readouterr().err == ("kmz: note: the image has 2 layers; encoded their composite "
                                       "(--frame N picks layer N, from 0)\n")
    assert main(["encode", str(path), "--frame", "1", "-o", str(tmp_path / "l1.kmz")]) == 0
    assert kmz.open(tmp_path / "l1.kmz").palette.tolist() == [[0, 255, 0]]
    flat = tmp_path / "flat.psd"
    flat.write_bytes(_psd(blue, []))
    assert io.open_image(flat, frame=0)[0].tolist() == blue.tolist()


def test_frame_of_a_still_image(tmp_path):
    path = tmp_path / "still.png"
    Image.new("RGB", (2, 2)).save(path)
    assert io.open_image(path, frame=0)[1] == []
    with pytest.raises(kmz.ImageReadError, match="no frame 1: the image has 1 frame$"):
        io.open_image(path, frame=1)


def test_zero_sized_image():
    with pytest.raises(kmz.ImageReadError, match=r"^the image has no pixels \(0 x 5\)$"):
        io.convert_image(Image.new("RGB", (0, 5)))
    with pytest.raises(kmz.ImageReadError):
        kmz.encode(Image.new("L", (7, 0)))


def _kodak_png(tmp_path):
    path = tmp_path / "small.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    return path.read_bytes()


@pytest.mark.parametrize("name, make, message", [
    ("truncated.png", lambda d: d[: len(d) // 2], "cannot read image (image file is truncated"),
    ("corrupt.png", lambda d: d[:100] + bytes(b ^ 0x5A for b in d[100:200]) + d[200:], "cannot read image ("),
    ("header_only.png", lambda d: d[:33], "not an image Pillow can read"),
    ("text.png", lambda d: b"this is not an image\n", "not an image Pillow can read"),
    ("empty.png", lambda d: b"", "not an image Pillow can read"),
])
def test_broken_files_are_image_read_errors(name, make, message, tmp_path, capsys):
    path = tmp_path / name
    path.write_bytes(make(_kodak_png(tmp_path)))
    with pytest.raises(kmz.ImageReadError) as caught:
        io.open_image(path)
    assert str(caught.value).startswith(f"{path}: {message}")
    assert main(["encode", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"kmz: error: {path}: {message}") and err.count("\n") == 1
    assert not path.with_suffix(".kmz").exists()


def test_an_unexpected_pillow_failure_is_named(tmp_path, monkeypatch):
    path = tmp_path / "a.png"
    Image.new("RGB", (2, 2)).save(path)

    def broken(self):
        raise IndexError()

    monkeypatch.setattr(Image.Image, "getexif", broken)
    with pytest.raises(kmz.ImageReadError, match=r"a.png: cannot read image \(IndexError\)$"):
        io.open_image(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(kmz.ImageReadError, match="nope.png: no such file$"):
        io.open_image(tmp_path / "nope.png")
    with pytest.raises(kmz.ImageReadError, match=": is a directory$"):
        io.open_image(tmp_path)


def test_old_api_still_returns_pixels(tmp_path):
    path = tmp_path / "a.png"
    Image.new("LA", (2, 1), (10, 0)).save(path)
    assert io.read_image(path).tolist() == [[[255, 255, 255]] * 2]
    assert io.to_rgb_array(Image.open(path)).tolist() == [[[255, 255, 255]] * 2]


def test_cli_background_and_notes(tmp_path, capsys):
    path = tmp_path / "half.png"
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(path)
    assert main(["encode", str(path), "--background", "#ff8000"]) == 0
    assert kmz.open(path.with_suffix(".kmz")).palette.tolist() == [[255, 128, 0]]
    assert capsys.readouterr().err == "kmz: note: the image has transparency; composited onto #ff8000\n"
    assert main(["encode", str(path), "--background", "nocolour", "--force"]) == 2
    assert "unknown colour 'nocolour'" in capsys.readouterr().err
    assert main(["encode", str(path), "--background", "#ff800080", "--force"]) == 2
    assert capsys.readouterr().err == ("kmz: error: argument --background: a background must be opaque, not "
                                       "'#ff800080' (alpha 128) (see 'kmz encode --help')\n")
    assert main(["encode", str(path), "--background", "#ff8000ff", "--force"]) == 0  # opaque: as #ff8000
    assert kmz.open(path.with_suffix(".kmz")).palette.tolist() == [[255, 128, 0]]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus absent")
@pytest.mark.parametrize("name, mode", [("camera", "L"), ("barb", "L"), ("circles", "P"), ("text", "P")])
def test_waterloo_grey_and_palette_images(name, mode):
    with Image.open(CORPUS / "waterloo" / f"{name}.png") as image:
        assert image.mode == mode
        expected = np.asarray(image.convert("RGB"))
    pixels, notes = io.open_image(CORPUS / "waterloo" / f"{name}.png")
    assert np.array_equal(pixels, expected) and notes == []
    if mode == "P":  # few colours: the encoding is lossless
        assert np.array_equal(kmz.encode(CORPUS / "waterloo" / f"{name}.png", k=256).to_array(), expected)
