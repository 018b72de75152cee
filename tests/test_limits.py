"""The decoder's refusals (spec section 4) and the pixel limit, in the library and the CLI."""

import importlib.util
import re
import struct
import subprocess
import sys
import tracemalloc
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kmz
from kmz import errors
from kmz import format as fmt
from kmz.cli import main

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "tests" / "bad"


def _load_make_bad():
    spec = importlib.util.spec_from_file_location("make_bad", BAD / "make_bad.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_bad = _load_make_bad()
CASES = make_bad.CASES


def k1_file(width, height, colour=b"\x01\x02\x03"):
    """A valid K = 1 file: 31 bytes whatever the size, since b = 0."""
    return fmt.encode(fmt.Header(width, height, 1), np.frombuffer(colour, np.uint8).reshape(1, 3), np.zeros(width * height))


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_file_refused_with_its_error_and_message(name):
    data, error, message = CASES[name]
    path = BAD / f"{name}.kmz"
    assert path.read_bytes() == data, "tests/bad is stale: run python tests/bad/make_bad.py"
    with pytest.raises(errors.FormatError) as caught:
        kmz.open(path)
    assert type(caught.value).__name__ == error
    assert str(caught.value) == message


def test_every_refusal_class_has_a_bad_file():
    # DamagedImageError only wraps one of these for Pillow users; it names no defect itself.
    classes = {c.__name__ for c in vars(errors).values()
               if isinstance(c, type) and issubclass(c, errors.FormatError)
               and c not in (errors.FormatError, errors.DamagedImageError)}
    assert classes == {error for _, error, _ in CASES.values()}
    assert len(classes) == 9


def test_base_file_of_the_bad_corpus_is_valid():
    image = kmz.frombytes(make_bad.GOOD)
    assert (image.width, image.height, image.k, len(make_bad.GOOD)) == (3, 5, 5, 49)
    assert image.indices.reshape(-1).tolist() == make_bad.INDICES


@pytest.mark.parametrize("command", ["decode", "info"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_cli_prints_one_line_and_exits_1(name, command, tmp_path, capsys):
    _, _, message = CASES[name]
    path = BAD / f"{name}.kmz"
    status = main([command, str(path)] + (["-o", str(tmp_path / "out.png")] if command == "decode" else []))
    out, err = capsys.readouterr()
    hint = " (--no-limit lifts the limit)" if "pixels" in message else ""
    assert (status, out, err) == (1, "", f"kmz: error: {path}: {message}{hint}\n")
    assert not (tmp_path / "out.png").exists()


def test_cli_subprocess_has_no_traceback_for_bad_files(tmp_path):
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    for name in ("pixel_bomb_2_62", "index_out_of_range", "empty"):
        run = subprocess.run([sys.executable, "-m", "kmz", "decode", str(BAD / f"{name}.kmz"), "-o", str(tmp_path / "x.png")],
                             capture_output=True, text=True, env=env)
        assert run.returncode == 1
        assert run.stderr.count("\n") == 1 and run.stderr.startswith("kmz: error: ")
        assert "Traceback" not in run.stderr


def test_default_limit_is_pillows():
    assert kmz.MAX_IMAGE_PIXELS == fmt.DEFAULT_MAX_IMAGE_PIXELS == 89_478_485


@pytest.mark.parametrize("width, height, outcome", [
    (10, 10, "ok"), (101, 1, "warn"), (10, 20, "warn"), (201, 1, "error"), (3, 67, "error"),
])
def test_limit_band_follows_pillow(width, height, outcome, monkeypatch):
    monkeypatch.setattr(kmz, "MAX_IMAGE_PIXELS", 100)
    data = k1_file(width, height)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if outcome == "error":
            with pytest.raises(kmz.PixelLimitError, match=f"= {width * height} pixels, more than twice the limit of 100 pixels"):
                kmz.frombytes(data)
        else:
            assert kmz.frombytes(data).size == (width, height)
    assert [w.category for w in caught] == ([kmz.PixelLimitWarning] if outcome == "warn" else [])
    if outcome == "warn":
        assert str(caught[0].message) == (f"image is {width} x {height} = {width * height} pixels, "
                                          "more than the limit of 100 pixels (a possible decompression bomb)")


def test_none_lifts_the_limit(monkeypatch):
    data = k1_file(3000, 3000)
    assert kmz.frombytes(data, max_pixels=None).size == (3000, 3000)
    with pytest.raises(kmz.PixelLimitError):
        kmz.frombytes(data, max_pixels=1000)
    monkeypatch.setattr(kmz, "MAX_IMAGE_PIXELS", None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert kmz.frombytes(data).size == (3000, 3000)


def test_limit_is_checked_before_anything_is_allocated():
    data = CASES["pixel_bomb_2_62"][0]
    assert len(data) == 31
    tracemalloc.start()
    try:
        with pytest.raises(kmz.PixelLimitError):
            kmz.frombytes(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


def test_limit_comes_before_the_length_check():
    # A truncated bomb is still a bomb: check 8 precedes check 9.
    with pytest.raises(kmz.PixelLimitError):
        kmz.frombytes(CASES["pixel_bomb_2_62"][0][:-1])


def test_cli_no_limit_on_a_bomb_is_a_clean_out_of_memory(tmp_path, capsys):
    status = main(["decode", str(BAD / "pixel_bomb_2_62.kmz"), "--no-limit", "-o", str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert status == 1 and re.fullmatch(r"kmz: error: out of memory: decoding 2147483647 x 2147483647 pixels "
                                        r"needs 9,223.4 PB, [\d,.]+ [kMGT]B available\n", err), err
    assert list(tmp_path.iterdir()) == []


GIB = 1 << 30


@pytest.fixture
def eight_gib(monkeypatch):
    """A machine with 8 GiB available, whatever this one has."""
    monkeypatch.setattr(kmz.io, "available_memory", lambda: 8 * GIB)


def test_ten_gigapixels_are_refused_before_the_allocation(eight_gib, tmp_path, capsys):
    # 31 bytes (K = 1, so no index data) that decode to 100000 x 100000 pixels: 20 GB of
    # indices. Today's machine might even hold that; the next step would not.
    bomb = tmp_path / "bomb.kmz"
    body = fmt.Header(100_000, 100_000, 1).pack() + b"\x01\x02\x03"  # no index data: b = 0
    bomb.write_bytes(body + struct.pack(">I", zlib.crc32(body)))
    with pytest.raises(kmz.OutOfMemoryError, match=r"^out of memory: decoding 100000 x 100000 pixels needs "
                       r"20.0 GB, 8.6 GB available$") as caught:
        kmz.open(bomb, max_pixels=None)
    assert isinstance(caught.value, MemoryError) and isinstance(caught.value, kmz.KmzError)
    assert main(["decode", str(bomb), "--no-limit", "-o", str(tmp_path / "x.png")]) == 1
    assert capsys.readouterr().err == ("kmz: error: out of memory: decoding 100000 x 100000 pixels needs 20.0 GB, "
                                       "8.6 GB available\n")
    assert main(["info", str(bomb), "--no-limit"]) == 1
    assert "out of memory" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.kmz"]


def test_an_image_too_big_for_memory_is_refused_before_it_is_loaded(eight_gib, tmp_path, capsys):
    # The PNG's header declares 50000 x 50000 pixels: 17.5 GB to load, at the least.
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_declaring(50_000, 50_000))
    with pytest.raises(kmz.OutOfMemoryError, match=rf"^{bomb}: out of memory: reading 50000 x 50000 pixels needs "
                       r"17.5 GB, 8.6 GB available$"):
        kmz.encode(bomb, max_pixels=None)
    assert main(["encode", str(bomb), "--no-limit"]) == 1
    assert capsys.readouterr().err.startswith(f"kmz: error: {bomb}: out of memory: reading 50000 x 50000 pixels")
    # Quantizing needs memory of its own, checked before it starts.
    with pytest.raises(kmz.OutOfMemoryError, match=r"^out of memory: quantizing 40000 x 40000 pixels needs 9.6 GB"):
        kmz.encode(np.broadcast_to(np.zeros(3, np.uint8), (40_000, 40_000, 3)), max_pixels=None)


def test_conversions_check_memory_too(monkeypatch):
    monkeypatch.setattr(kmz.io, "available_memory", lambda: 2_000_000)
    small_k = kmz.KmzImage(np.zeros((256, 3), np.uint8), np.zeros((1000, 1000), np.uint16))
    assert small_k.to_pil().size == (1000, 1000)  # 1 byte a pixel: 1 MB fits
    with pytest.raises(kmz.OutOfMemoryError, match=r"^out of memory: an array of 1000 x 1000 pixels needs 3.0 MB, 2.0 MB"):
        small_k.to_array()
    large_k = kmz.KmzImage(np.zeros((300, 3), np.uint8), np.zeros((1000, 1000), np.uint16))
    with pytest.raises(kmz.OutOfMemoryError, match=r"^out of memory: an image of 1000 x 1000 pixels needs 7.0 MB"):
        large_k.to_pil()


def test_where_memory_is_not_known_nothing_is_refused(monkeypatch):
    monkeypatch.setattr(kmz.io, "available_memory", lambda: None)
    assert kmz.frombytes(k1_file(30, 20)).size == (30, 20)


def test_available_memory_reads_memavailable():
    available = kmz.io.available_memory()
    if not Path("/proc/meminfo").exists():
        assert available is None
        return
    line = next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemAvailable:"))
    assert abs(available - int(line.split()[1]) * 1024) < 256 * 1024 * 1024  # it moves a little between reads


def test_skip_checksum_skips_only_the_checksum():
    data = CASES["checksum"][0]
    image = kmz.frombytes(data, verify_checksum=False)
    assert image.indices.reshape(-1).tolist() == make_bad.INDICES
    broken = CASES["index_out_of_range"][0]
    broken = broken[:-4] + struct.pack(">I", zlib.crc32(broken[:-4]) ^ 0xFFFF)
    with pytest.raises(kmz.IndexRangeError, match=r"^index 6 at pixel \(1, 2\)"):
        kmz.frombytes(broken, verify_checksum=False)
    for name in ("padding_bit", "trailing_byte", "bits_17", "pixel_bomb_2_62"):
        with pytest.raises(getattr(kmz, CASES[name][1])):
            kmz.frombytes(CASES[name][0], verify_checksum=False)


def test_cli_skip_checksum(tmp_path, capsys):
    out = tmp_path / "salvaged.png"
    assert main(["decode", str(BAD / "checksum.kmz"), "-o", str(out)]) == 1
    assert main(["decode", str(BAD / "checksum.kmz"), "-o", str(out), "--skip-checksum"]) == 0
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), kmz.frombytes(make_bad.GOOD).to_array())
    assert main(["info", str(BAD / "checksum.kmz"), "--skip-checksum", "--json"]) == 0
    assert '"file_bytes": 49' in capsys.readouterr().out


def test_cli_no_limit_and_warning(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(kmz, "MAX_IMAGE_PIXELS", 100)
    big, middling = tmp_path / "big.kmz", tmp_path / "middling.kmz"
    big.write_bytes(k1_file(30, 30))
    middling.write_bytes(k1_file(15, 10))
    assert main(["decode", str(big), "-o", str(tmp_path / "a.png")]) == 1
    assert capsys.readouterr().err == (f"kmz: error: {big}: image is 30 x 30 = 900 pixels, more than twice the limit of "
                                       "100 pixels (a possible decompression bomb) (--no-limit lifts the limit)\n")
    assert main(["decode", str(big), "-o", str(tmp_path / "a.png"), "--no-limit"]) == 0
    assert Image.open(tmp_path / "a.png").size == (30, 30)
    assert main(["info", str(big), "--no-limit"]) == 0
    capsys.readouterr()
    assert main(["decode", str(middling), "-o", str(tmp_path / "b.png")]) == 0
    err = capsys.readouterr().err
    assert err == ("kmz: warning: image is 15 x 10 = 150 pixels, more than the limit of 100 pixels "
                   "(a possible decompression bomb)\n")


def test_encoder_limit(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(kmz, "MAX_IMAGE_PIXELS", 100)
    pixels = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(kmz.PixelLimitError, match="20 x 20 = 400 pixels"):
        kmz.encode(pixels, k=2)
    assert kmz.encode(pixels, k=2, max_pixels=None).size == (20, 20)
    png = tmp_path / "big.png"
    Image.fromarray(pixels).save(png)
    with pytest.raises(kmz.PixelLimitError, match="20 x 20 = 400 pixels"):
        kmz.encode(Image.open(png), k=2)
    assert main(["encode", str(png)]) == 1
    assert capsys.readouterr().err == (f"kmz: error: {png}: image is 20 x 20 = 400 pixels, more than twice the "
                                       "limit of 100 pixels (a possible decompression bomb) (--no-limit lifts the limit)\n")
    assert not png.with_suffix(".kmz").exists()
    assert main(["encode", str(png), "--no-limit"]) == 0
    assert kmz.open(png.with_suffix(".kmz"), max_pixels=None).size == (20, 20)
    capsys.readouterr()
    middling = tmp_path / "middling.png"
    Image.new("RGB", (12, 10)).save(middling)
    assert main(["encode", str(middling)]) == 0
    assert capsys.readouterr().err == ("kmz: warning: image is 12 x 10 = 120 pixels, more than the limit of 100 "
                                       "pixels (a possible decompression bomb)\n")


def test_sweep_limit_as_encode(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(kmz, "MAX_IMAGE_PIXELS", 100)
    png = tmp_path / "big.png"
    Image.new("RGB", (20, 20)).save(png)
    assert main(["sweep", str(png), "-k", "2,4", "-q"]) == 1
    assert capsys.readouterr().err == (f"kmz: error: {png}: image is 20 x 20 = 400 pixels, more than twice the "
                                       "limit of 100 pixels (a possible decompression bomb) (--no-limit lifts the limit)\n")
    assert main(["sweep", str(png), "-k", "2,4", "-q", "--no-limit"]) == 0
    capsys.readouterr()
    middling = tmp_path / "middling.png"
    Image.new("RGB", (12, 10)).save(middling)
    assert main(["sweep", str(middling), "-k", "2,4", "-q"]) == 0
    pytest.importorskip("matplotlib")  # without it, a note says the chart is missing
    assert capsys.readouterr().err == ("kmz: warning: image is 12 x 10 = 120 pixels, more than the limit of "
                                       "100 pixels (a possible decompression bomb)\n")  # once, not at each K


def _png_declaring(width, height):
    """A 57-byte PNG whose header declares width x height RGB pixels and holds none."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


def test_encoder_refuses_a_png_bomb_before_loading_it(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_declaring(100_000, 100_000))
    tracemalloc.start()
    try:
        with pytest.raises(kmz.PixelLimitError, match=r"bomb.png: image is 100000 x 100000 = 10,000,000,000 pixels"):
            kmz.encode(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024
    # Pillow's own limit is restored after the read.
    assert Image.MAX_IMAGE_PIXELS == 89_478_485
