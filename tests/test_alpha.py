"""Transparency (issue 13): RGBA palettes in the format, the quantizer's composite
metric, and RGBA through the API, the Pillow plugin and the command line."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kmz
from kmz import _coding, io
from kmz import format as fmt
from kmz.cli import main
from kmz.colour import composite_to_rgba, rgba_to_composite
from kmz.image import psnr
from kmz.quantize import quantize

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "alpha"


def composite_mse(original, decoded, background):
    """The mean squared error of two straight-RGBA arrays composited over a grey level
    (0 black, 255 white): C·a + background·(1 - a) per channel, a = alpha / 255."""
    a, b = (np.asarray(x, dtype=np.float64).reshape(-1, 4) for x in (original, decoded))
    over = [x[:, :3] * (x[:, 3:] / 255.0) + background * (1.0 - x[:, 3:] / 255.0) for x in (a, b)]
    return float(np.mean((over[0] - over[1]) ** 2))


def icon(size=24):
    """A round icon with a soft edge and a shadow on a clear background."""
    y, x = np.mgrid[0:size, 0:size] - (size - 1) / 2
    r = np.hypot(x, y)
    alpha = np.clip((size / 3 - r) * 80, 0, 255)
    shadow = np.clip((size / 2.2 - np.hypot(x - 2, y - 2)) * 20, 0, 90)
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[..., 0] = np.where(alpha > 0, 40 + (x + size) * 4, 0)
    rgba[..., 1] = np.where(alpha > 0, 120, 0)
    rgba[..., 2] = np.where(alpha > 0, 200 - (y + size) * 2, 0)
    rgba[..., 3] = np.maximum(alpha, shadow).astype(np.uint8)
    return rgba


def test_composite_coordinates_make_the_metric_euclidean():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, (2, 500, 4), dtype=np.uint8)
    squared = ((rgba_to_composite(a).astype(np.float64) - rgba_to_composite(b)) ** 2).sum(axis=1)
    # The mean of the over-black and over-white squared errors, summed over R, G, B.
    expected = [3 * (composite_mse(a[i], b[i], 0.0) + composite_mse(a[i], b[i], 255.0)) / 2 for i in range(500)]
    assert np.allclose(squared, expected, rtol=1e-4, atol=1e-2)
    # Every fully transparent colour is the origin, and bytes come back from their point.
    assert not rgba_to_composite(np.array([[200, 10, 30, 0]], np.uint8)).any()
    assert composite_to_rgba(rgba_to_composite(a)).tolist() == np.where(a[:, 3:] > 0, a, 0).tolist()


def test_psnr_of_rgba_ignores_the_colour_of_clear_pixels():
    a = np.array([[[10, 20, 30, 0], [1, 2, 3, 255]]], np.uint8)
    b = np.array([[[250, 0, 9, 0], [1, 2, 3, 255]]], np.uint8)
    assert psnr(a, b) == float("inf")
    c = a.copy()
    c[0, 1, 3] = 254  # an alpha error: 1/255 of the colour over black, of its distance to white over white
    colour = np.array([1.0, 2.0, 3.0])
    black, white = (colour / 255) ** 2, ((255 - colour) / 255) ** 2
    mse = (black.sum() / 6 + white.sum() / 6) / 2  # 2 pixels x 3 channels, the first exact
    assert psnr(a, c) == pytest.approx(10 * np.log10(255**2 / mse))


def test_few_colours_come_back_exactly_and_clear_pixels_share_one_entry():
    pixels = np.array([[9, 9, 9, 0], [1, 2, 3, 0], [255, 0, 0, 255], [0, 0, 255, 128], [255, 0, 0, 255]], np.uint8)
    result = quantize(pixels, 3)
    assert len(result.palette) == 3
    decoded = result.palette[result.labels]
    assert decoded[2:].tolist() == pixels[2:].tolist()
    assert decoded[:2].tolist() == [[0, 0, 0, 0]] * 2


def test_quantizer_keeps_a_transparent_entry_and_is_deterministic():
    pixels = icon(40).reshape(-1, 4)
    first = quantize(pixels, 8)
    assert first.palette.shape == (8, 4)
    clear = first.labels[pixels[:, 3] == 0]
    assert len(set(clear.tolist())) == 1 and first.palette[clear[0]].tolist() == [0, 0, 0, 0]
    again = quantize(pixels, 8)
    assert np.array_equal(first.palette, again.palette) and np.array_equal(first.labels, again.labels)
    with pytest.raises(ValueError, match="composite"):
        quantize(pixels, 8, space="oklab")


@pytest.mark.parametrize("coding", ["raw", "ctx", "mix"])
def test_icon_round_trip_through_the_file(coding):
    rgba = icon()
    image = kmz.encode(rgba, k=16, coding=coding)
    data = image.tobytes()
    assert data[10:12] == b"\x00\x01"  # flags: alpha
    decoded = kmz.frombytes(data)
    assert decoded.coding == coding
    assert decoded.palette.shape == (image.k, 4) and decoded.to_array().shape == (24, 24, 4)
    assert np.array_equal(decoded.to_array(), image.to_array())
    assert (decoded.to_array()[rgba[..., 3] == 0] == 0).all()  # clear stays clear (and nearly clear may join it)
    assert psnr(rgba, decoded.to_array()) > 30
    if coding == "raw":
        assert len(data) == fmt.file_size(24, 24, image.k, alpha=True) == 28 + 4 * image.k + 24 * 24 * 4 // 8


def test_opaque_alpha_is_written_as_opaque():
    rgb = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    rgba = np.dstack([rgb, np.full((5, 7), 255, np.uint8)])
    assert kmz.encode(rgba, k=8).tobytes() == kmz.encode(rgb, k=8).tobytes()
    assert kmz.encode(Image.fromarray(rgba, "RGBA"), k=8).tobytes() == kmz.encode(rgb, k=8).tobytes()


def test_an_old_reader_refuses_and_other_flag_bits_are_refused():
    data = bytearray(kmz.encode(icon(), k=4).tobytes())
    data[10:12] = b"\x00\x02"
    with pytest.raises(kmz.HeaderError, match="reserved"):
        fmt.read_header(bytes(data))


def test_ctx_order_ranks_by_the_composite_distance():
    rng = np.random.default_rng(5)
    palette = rng.integers(0, 256, (50, 4)).astype(np.uint8)
    palette[::7, 3] = 0  # several clear entries, ties at distance 0 among them
    order = np.empty(50, np.uint16)
    p = palette.astype(np.int64)
    u = (2 * p[:, :3] - 255) * p[:, 3:]
    w = 255 * p[:, 3]
    for ref in (0, 7, 13, 49):
        _coding.order(palette, ref, order)
        distance = ((u - u[ref]) ** 2).sum(axis=1) + 3 * (w - w[ref]) ** 2
        assert order.tolist() == np.lexsort((np.arange(50), distance)).tolist()


def test_decode_writes_a_palette_png_with_trns_and_rgba_above_256(tmp_path):
    small = kmz.encode(icon(), k=16)
    small.save(tmp_path / "small.png")
    with Image.open(tmp_path / "small.png") as png:
        assert png.mode == "P" and "transparency" in png.info
        assert np.array_equal(np.asarray(png.convert("RGBA")), small.to_array())
    rng = np.random.default_rng(2)
    palette = np.column_stack([rng.integers(0, 256, (300, 3)), np.arange(300) % 256]).astype(np.uint8)
    big = kmz.KmzImage(palette, np.arange(300, dtype=np.uint16).reshape(15, 20))
    big.save(tmp_path / "big.png")
    with Image.open(tmp_path / "big.png") as png:
        assert png.mode == "RGBA" and np.array_equal(np.asarray(png), big.to_array())
    with pytest.raises(kmz.WriteError, match="transparency"):
        small.save(tmp_path / "small.jpg")


@pytest.mark.parametrize("suffix", [".png", ".tiff", ".webp", ".ico", ".qoi", ".tga", ".sgi", ".dds", ".jp2", ".im"])
@pytest.mark.parametrize("k", [16, 300])
@pytest.mark.filterwarnings("ignore:IM image format is deprecated:DeprecationWarning")  # still written exactly
def test_formats_with_alpha_keep_every_level_of_it(tmp_path, suffix, k):
    # TIFF and ICO drop a palette's alpha, so they (and the others but PNG) are given RGBA.
    rng = np.random.default_rng(k)
    palette = np.column_stack([rng.integers(0, 256, (k, 3)), np.arange(k) % 256]).astype(np.uint8)
    image = kmz.KmzImage(palette, rng.integers(0, k, (24, 40), dtype=np.uint16))
    image.save(tmp_path / f"x{suffix}")
    with Image.open(tmp_path / f"x{suffix}") as written:
        assert np.array_equal(np.asarray(written.convert("RGBA")), image.to_array())


@pytest.mark.parametrize("mode", ["LA", "PA", "P-tRNS", "RGBA16"])
def test_transparent_input_modes_keep_their_alpha(tmp_path, mode):
    path = tmp_path / "in.png"
    if mode == "LA":
        Image.fromarray(np.dstack([np.full((2, 3), 90, np.uint8), np.array([[0, 128, 255]] * 2, np.uint8)]), "LA").save(path)
        expected = [[90, 90, 90, 0], [90, 90, 90, 128], [90, 90, 90, 255]]
    elif mode == "PA":
        image = Image.new("PA", (3, 2))
        image.putpalette([9, 8, 7, 50, 60, 70])
        image.putdata([(1, 0), (1, 128), (0, 255)] * 2)
        path = image  # Pillow writes no PA PNG: convert the image itself
        expected = [[50, 60, 70, 0], [50, 60, 70, 128], [9, 8, 7, 255]]
    elif mode == "P-tRNS":
        image = Image.new("P", (3, 2))
        image.putpalette([9, 8, 7, 50, 60, 70, 1, 2, 3])
        image.putdata([0, 1, 2] * 2)
        image.save(path, transparency=bytes([0, 128, 255]))
        expected = [[9, 8, 7, 0], [50, 60, 70, 128], [1, 2, 3, 255]]
    else:  # 16-bit RGBA, written by hand (Pillow writes no 16-bit RGBA)
        path.write_bytes(_png16([[(1000, 65535, 0, 0), (65535, 0, 32896, 32896), (0, 0, 65535, 65535)]] * 2))
        expected = [[3, 255, 0, 0], [255, 0, 128, 128], [0, 0, 255, 255]]
    if isinstance(path, Image.Image):
        pixels, notes = io.convert_image(path)
    else:
        pixels, notes = io.open_image(path)
    assert pixels.shape == (2, 3, 4) and notes == []
    # Clear pixels' colour bytes are Pillow's business; compare what shows.
    assert psnr(pixels, np.array([expected] * 2, np.uint8)) == float("inf")
    decoded = kmz.encode(pixels, k=4).to_array()
    assert psnr(pixels, decoded) == float("inf") and decoded.shape == (2, 3, 4)


def _png16(rows):
    import struct
    import zlib

    height, width = len(rows), len(rows[0])
    raw = b"".join(b"\x00" + b"".join(struct.pack(">4H", *p) for p in row) for row in rows)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_background_still_flattens_and_dither_needs_it():
    rgba = Image.fromarray(icon(), "RGBA")
    flat = kmz.encode(rgba, k=8, background="black")
    assert flat.palette.shape == (8, 3)
    with pytest.raises(ValueError, match="dithering"):
        kmz.encode(rgba, k=8, dither=True)
    assert kmz.encode(rgba, k=8, dither=True, background="white").palette.shape[1] == 3


def test_psnr_target_uses_the_composite(tmp_path):
    image = kmz.encode(icon(32), psnr=30, k=64)
    assert image.target.met and psnr(icon(32), image.to_array()) >= 30
    assert image.palette.shape[1] == 4


def test_pillow_plugin_opens_and_saves_rgba(tmp_path):
    path = tmp_path / "a.kmz"
    Image.fromarray(icon(), "RGBA").save(path, k=16)
    expected = kmz.open(path).to_array()
    with Image.open(path) as image:
        assert image.mode == "P"
        assert np.array_equal(np.asarray(image.convert("RGBA")), expected)
    big = kmz.KmzImage(np.column_stack([np.zeros((300, 3)), np.arange(300) % 256]).astype(np.uint8),
                       np.arange(300, dtype=np.uint16).reshape(10, 30))
    big.save(tmp_path / "big.kmz")
    with Image.open(tmp_path / "big.kmz") as image:
        assert image.mode == "RGBA" and np.array_equal(np.asarray(image), big.to_array())


@pytest.mark.parametrize("coding", ["ctx", "mix"])
def test_cli_encode_decode_info_keep_transparency(tmp_path, capsys, coding):
    source = tmp_path / "icon.png"
    Image.fromarray(icon(), "RGBA").save(source)
    assert main(["encode", str(source), "-k", "16", "--coding", coding]) == 0
    assert "formula 32K + N*b" in capsys.readouterr().out
    assert main(["decode", str(source.with_suffix(".kmz")), "-o", str(tmp_path / "out.png")]) == 0
    with Image.open(tmp_path / "out.png") as png:
        assert png.mode == "P" and "transparency" in png.info
        assert np.array_equal(np.asarray(png.convert("RGBA")), kmz.open(source.with_suffix(".kmz")).to_array())
        assert (np.asarray(png.convert("RGBA"))[icon()[..., 3] == 0] == 0).all()
    capsys.readouterr()
    assert main(["info", "--json", str(source.with_suffix(".kmz"))]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["channels"] == "RGBA" and info["palette_bits"] == 32 * info["k"] and info["coding"] == coding
    assert main(["info", str(source.with_suffix(".kmz"))]) == 0
    assert "channels        RGBA (4 bytes per palette entry)" in capsys.readouterr().out


@pytest.mark.skipif(not CORPUS.exists(), reason="no shared corpus")
def test_a_corpus_icon_survives_encode_then_decode(tmp_path):
    source = CORPUS / "adwaita-computer.png"
    assert main(["encode", str(source), "-o", str(tmp_path / "c.kmz"), "-k", "256"]) == 0
    assert main(["decode", str(tmp_path / "c.kmz"), "-o", str(tmp_path / "c.png")]) == 0
    original = np.asarray(Image.open(source).convert("RGBA"))
    with Image.open(tmp_path / "c.png") as png:
        assert psnr(original, np.asarray(png.convert("RGBA"))) == float("inf")  # 246 colours: exact


def test_cli_refuses_oklab_and_dither_for_rgba(tmp_path, capsys):
    source = tmp_path / "icon.png"
    Image.fromarray(icon(), "RGBA").save(source)
    assert main(["encode", str(source), "--dither"]) == 2
    assert "transparency" in capsys.readouterr().err
    assert main(["encode", str(source), "--space", "oklab", "--background", "white"]) == 0
