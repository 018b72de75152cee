"""The kmz command through its entry function main(argv), and once as a subprocess."""

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kmz
from kmz.cli import main

ROOT = Path(__file__).resolve().parents[1]
GRAPHIC = ROOT / "samples" / "shapes.png"  # 160 x 120, 6 colours
PHOTO = ROOT / "samples" / "kodim03.png"  # 256 x 192


@pytest.fixture
def graphic(tmp_path):
    path = tmp_path / "shapes.png"
    shutil.copy(GRAPHIC, path)
    return path


@pytest.fixture
def small_photo(tmp_path):
    """A 40 x 30 corner of the photo, saved as PNG: many colours, quick to quantize."""
    path = tmp_path / "photo.png"
    with Image.open(PHOTO) as image:
        image.crop((0, 0, 40, 30)).save(path)
    return path


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_error_line(err, *parts):
    assert err.startswith("kmz: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for part in parts:
        assert part in err, err


def test_encode_prints_path_size_k_bits_formula_and_psnr(capsys, small_photo, tmp_path):
    out_path = tmp_path / "out.kmz"
    status, out, err = run(capsys, "encode", small_photo, "-o", out_path, "-k", "16", "--seed", "1")
    assert status == 0 and err == ""
    size = out_path.stat().st_size
    assert size == 28 + 3 * 16 + 40 * 30 * 4 // 8
    assert out.count("\n") == 1
    assert out.startswith(f"{out_path}: {size:,} bytes, K=16, 4 bits per index, ")
    assert f"24K + N*b = {24 * 16 + 1200 * 4:,} bits ({(24 * 16 + 1200 * 4) // 8:,} bytes) + 28 bytes overhead" in out
    psnr = float(re.search(r"PSNR ([\d.]+) dB", out).group(1))
    assert 20 < psnr < 60
    assert out_path.read_bytes() == kmz.encode(small_photo, k=16, seed=1).tobytes()


def test_the_summary_rounds_the_formula_up_to_whole_bytes(capsys, tmp_path):
    path = tmp_path / "five.png"  # 5 x 3 pixels of 5 colours: 3 bits each, 45 bits
    Image.fromarray(np.arange(15, dtype=np.uint8).reshape(3, 5) % 5 * 50).convert("RGB").save(path)
    status, out, _ = run(capsys, "encode", path, "-k", "5")
    assert status == 0 and path.with_suffix(".kmz").stat().st_size == 21 + 28
    assert "formula 24K + N*b = 165 bits (21 bytes) + 28 bytes overhead, " in out


def test_encode_default_output_and_k(capsys, small_photo):
    status, out, _ = run(capsys, "encode", small_photo)
    assert status == 0
    out_path = small_photo.with_suffix(".kmz")
    image = kmz.open(out_path)
    assert image.k == 64 and out.startswith(f"{out_path}: ")


def test_encode_few_colours_says_so_and_is_lossless(capsys, graphic):
    status, out, _ = run(capsys, "encode", graphic, "-k", "256")
    assert status == 0
    assert "K=6 (the image has only 6 colours)" in out and "PSNR inf dB" in out
    with Image.open(graphic) as original:
        assert (kmz.open(graphic.with_suffix(".kmz")).to_array() == np.asarray(original.convert("RGB"))).all()


def test_decode_default_output_is_a_pixel_identical_png(capsys, graphic, tmp_path):
    run(capsys, "encode", graphic, "-o", tmp_path / "g.kmz")
    status, out, err = run(capsys, "decode", tmp_path / "g.kmz")
    png = tmp_path / "g.png"
    assert status == 0 and err == ""
    assert out == f"{png}: 160x120, K=6, {png.stat().st_size:,} bytes\n"
    with Image.open(png) as decoded, Image.open(graphic) as original:
        assert decoded.format == "PNG" and decoded.mode == "P"
        assert (np.asarray(decoded.convert("RGB")) == np.asarray(original.convert("RGB"))).all()


def test_decode_with_output(capsys, small_photo, tmp_path):
    run(capsys, "encode", small_photo, "-o", tmp_path / "p.kmz", "-k", "300")
    status, out, _ = run(capsys, "decode", tmp_path / "p.kmz", "-o", tmp_path / "sub.png")
    assert status == 0 and out.startswith(f"{tmp_path / 'sub.png'}: 40x30, K=300, ")
    with Image.open(tmp_path / "sub.png") as decoded:
        assert decoded.mode == "RGB"  # K > 256
        assert (np.asarray(decoded) == kmz.open(tmp_path / "p.kmz").to_array()).all()


def test_info_text_breaks_the_size_down(capsys, small_photo, tmp_path):
    run(capsys, "encode", small_photo, "-o", tmp_path / "p.kmz", "-k", "5")
    status, out, _ = run(capsys, "info", tmp_path / "p.kmz")
    size = 28 + 15 + math.ceil(1200 * 3 / 8)
    assert status == 0
    for line in ["40 x 30 = 1,200 pixels", "K = 5, 3 bits per index", "24K = 120", "N*b = 3,600",
                 "24K + N*b = 3,720 bits (+ 0 padding bits)", "28 bytes (24 header + 4 CRC-32)",
                 f"{size:,} bytes by the formula (raw coding), {size:,} bytes on disk (100.0% of the formula)", "24N = 28,800 bits (3,600 bytes)"]:
        assert line in out, line


def test_info_json(capsys, small_photo, tmp_path):
    run(capsys, "encode", small_photo, "-o", tmp_path / "p.kmz", "-k", "3")
    status, out, _ = run(capsys, "info", tmp_path / "p.kmz", "--json")
    assert status == 0
    info = json.loads(out)
    assert info == {
        "version": 1, "coding": "raw", "width": 40, "height": 30, "k": 3, "bits_per_index": 2,
        "channels": "RGB", "palette_bits": 72, "index_bits": 2400, "padding_bits": 0, "overhead_bytes": 28,
        "formula_bytes": 28 + 9 + 300, "file_bytes": 28 + 9 + 300, "raw_rgb_bytes": 3600,
        "palette_bytes": 9, "index_bytes": 300,
    }


@pytest.mark.parametrize("coding", ["ctx", "mix"])
def test_info_of_a_coded_file_splits_palette_and_payload(capsys, small_photo, tmp_path, coding):
    # ctx keeps the raw palette after the header; mix's payload holds the palette.
    run(capsys, "encode", small_photo, "-o", tmp_path / "p.kmz", "-k", "5", "--coding", coding)
    size = (tmp_path / "p.kmz").stat().st_size
    status, out, _ = run(capsys, "info", tmp_path / "p.kmz", "--json")
    info = json.loads(out)
    palette_bytes = 15 if coding == "ctx" else 0
    assert status == 0 and info["coding"] == coding
    assert (info["palette_bytes"], info["index_bytes"], info["file_bytes"]) == (
        palette_bytes, size - 28 - palette_bytes, size)
    assert (info["palette_bits"], info["formula_bytes"]) == (120, 28 + 15 + math.ceil(1200 * 3 / 8))
    status, out, _ = run(capsys, "info", tmp_path / "p.kmz")
    label = "index data     " if coding == "ctx" else "palette+indices"
    assert status == 0 and f"  {label} {size - 28 - palette_bytes:,} bytes, coding {coding}\n" in out
    assert ("palette+indices" in out) == (coding == "mix")


@pytest.mark.parametrize("coding", ["raw", "ctx", "mix"])
@pytest.mark.parametrize("alpha", [False, True], ids=["rgb", "rgba"])
def test_info_json_prints_exactly_the_keys_docs_info_md_lists(capsys, tmp_path, coding, alpha):
    documented = re.findall(r"^\| `(\w+)` \|", (ROOT / "docs" / "info.md").read_text(), re.MULTILINE)
    pixels = np.asarray(Image.open(PHOTO).convert("RGBA").crop((0, 0, 40, 30))).copy()
    pixels[::2, :, 3] = 0 if alpha else 255
    kmz.encode(pixels, k=5, coding=coding).save(tmp_path / "p.kmz")
    status, out, _ = run(capsys, "info", tmp_path / "p.kmz", "--json")
    info = json.loads(out)
    assert status == 0 and list(info) == documented
    assert (info["coding"], info["channels"]) == (coding, "RGBA" if alpha else "RGB")
    # As docs/info.md says: the file's parts add up to its length, whatever the coding.
    assert info["overhead_bytes"] + info["palette_bytes"] + info["index_bytes"] == info["file_bytes"]


def test_an_existing_output_is_kept_without_force(capsys, graphic, tmp_path):
    out_path = tmp_path / "g.kmz"
    out_path.write_bytes(b"keep me")
    status, out, err = run(capsys, "encode", graphic, "-o", out_path)
    assert status == 1 and out == ""
    assert_one_error_line(err, str(out_path), "exists", "--force")
    assert out_path.read_bytes() == b"keep me"
    assert run(capsys, "encode", graphic, "-o", out_path, "--force")[0] == 0
    assert kmz.open(out_path).k == 6
    png = tmp_path / "g.png"
    png.write_bytes(b"keep me too")
    assert run(capsys, "decode", out_path, "-o", png)[0] == 1
    assert png.read_bytes() == b"keep me too"
    assert run(capsys, "decode", out_path, "-o", png, "--force")[0] == 0


def test_an_input_is_never_overwritten(capsys, graphic, tmp_path):
    before = graphic.read_bytes()
    status, _, err = run(capsys, "encode", graphic, "-o", graphic, "--force")
    assert status == 1 and graphic.read_bytes() == before
    assert_one_error_line(err, "refusing to overwrite the input")
    run(capsys, "encode", graphic, "-o", tmp_path / "g.kmz")
    kmz_bytes = (tmp_path / "g.kmz").read_bytes()
    status, _, err = run(capsys, "decode", tmp_path / "g.kmz", "-o", tmp_path / "g.kmz", "--force")
    assert status == 1 and (tmp_path / "g.kmz").read_bytes() == kmz_bytes
    assert_one_error_line(err, "refusing to overwrite the input")


def test_a_bad_file_leaves_no_output_behind(capsys, tmp_path):
    bad = tmp_path / "bad.kmz"
    bad.write_bytes((ROOT / "spec" / "vectors" / "bad" / "index-out-of-range.kmz").read_bytes())
    status, _, err = run(capsys, "decode", bad, "-o", tmp_path / "out.png")
    assert status == 1
    assert_one_error_line(err, f"{bad}: index 7 at pixel (1, 1)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.kmz"]


@pytest.mark.parametrize("command", ["decode", "info"])
def test_bad_files_are_one_line_and_status_1(capsys, tmp_path, command):
    not_kmz = tmp_path / "photo.png"
    shutil.copy(GRAPHIC, not_kmz)
    status, out, err = run(capsys, command, not_kmz, *(["-o", tmp_path / "x.png"] if command == "decode" else []))
    assert status == 1 and out == ""
    assert_one_error_line(err, f"{not_kmz}: not a .kmz file")
    status, _, err = run(capsys, command, tmp_path / "missing.kmz")
    assert status == 1
    assert_one_error_line(err, "missing.kmz", "no such file")


def test_unreadable_image_is_one_line_and_status_1(capsys, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    status, _, err = run(capsys, "encode", text)
    assert status == 1
    assert_one_error_line(err, str(text))
    assert not text.with_suffix(".kmz").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["compress", "x.png"], "invalid choice"),
        (["encode"], "required"),
        (["encode", "x.png", "-k", "0"], "K must be between 1 and 65536"),
        (["encode", "x.png", "-k", "65537"], "K must be between 1 and 65536"),
        (["encode", "x.png", "-k", "many"], "K must be a whole number"),
        (["encode", "x.png", "--seed", "-1"], "seed must be between 0 and"),
        (["encode", "."], "is not a file"),
        (["decode", "x.kmz", "--bogus"], "unrecognized arguments"),
        (["info"], "required"),
    ],
)
def test_bad_usage_is_one_line_and_status_2(capsys, argv, message):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert_one_error_line(err, message)


@pytest.mark.parametrize("argv, message", [
    (["encode", "x.png", "--frame", "²"], "argument --frame: frame must be a whole number from 0, not '²' "
                                          "(see 'kmz encode --help')"),
    (["encode", "x.png", "-o", ""], "argument -o/--output: '' is not a file (see 'kmz encode --help')"),
    (["decode", "x.kmz", "-o", ""], "argument -o/--output: '' is not a file (see 'kmz decode --help')"),
    (["encode", "x.png", "--bogus"], "unrecognized arguments: --bogus (see 'kmz encode --help')"),
    (["encode", "x.png", "--strict"], "--strict needs a target: --psnr or --max-bytes (see 'kmz encode --help')"),
    (["batch", "x.png", "-o", "out", "--strict"],
     "--strict needs a target: --psnr or --max-bytes (see 'kmz batch --help')"),
    (["sweep", "x.png", "--bogus", "1"], "unrecognized arguments: --bogus 1 (see 'kmz sweep --help')"),
    (["sweep", "x.png", "-o", ""], "argument -o/--output-dir: an empty path names nothing (see 'kmz sweep --help')"),
    (["batch", "x.png", "-o", ""], "argument -o/--output: an empty path names nothing (see 'kmz batch --help')"),
    (["batch", "", "-o", "out"], "argument SRC: an empty path names nothing (see 'kmz batch --help')"),
    (["batch", "x.png", "-o", "out", "--manifest", ""],
     "argument --manifest: an empty path names nothing (see 'kmz batch --help')"),
])
def test_bad_usage_messages_name_the_option_and_the_command_s_help(capsys, argv, message):
    assert run(capsys, *argv) == (2, "", f"kmz: error: {message}\n")


def test_help_returns_0(capsys):
    status, out, _ = run(capsys, "--help")
    assert status == 0 and "encode" in out and "decode" in out and "info" in out


def test_python_dash_m_kmz_runs_the_cli(graphic, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "kmz", "encode", graphic, "-o", tmp_path / "g.kmz", "-k", "4"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{tmp_path / 'g.kmz'}: ") and "K=4" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "kmz", "info", graphic], capture_output=True, text=True, env=env, timeout=120,
    )
    assert done.returncode == 1 and done.stderr == f"kmz: error: {graphic}: not a .kmz file (bad signature)\n"
