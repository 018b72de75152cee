import sys

import numpy as np
import pytest
from PIL import Image

import kmz
from kmz import cli, sweep
from kmz import format as fmt
from kmz.image import psnr

KS = (2, 4, 8)


@pytest.fixture(scope="module")
def pixels():
    rng = np.random.default_rng(7)
    # Smooth gradients plus noise: many colours, so every K is used in full.
    y, x = np.mgrid[0:20, 0:30]
    base = np.stack([x * 8, y * 12, (x + y) * 5], axis=2)
    return np.clip(base + rng.integers(0, 20, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def png(tmp_path, pixels):
    path = tmp_path / "pic.png"
    Image.fromarray(pixels).save(path)
    return path


def test_rows_measure_each_k(pixels):
    rows = sweep.sweep(pixels, KS, input_bytes=1000)
    assert [row.k for row in rows] == list(KS)
    for row in rows:
        assert row.image.k == row.k
        assert row.kmz_bytes == fmt.file_size(30, 20, row.k) == len(row.image.tobytes())
        assert row.bits_per_pixel == 8 * row.kmz_bytes / 600
        assert row.ratio_to_input == row.kmz_bytes / 1000
        assert row.ratio_to_raw == row.kmz_bytes / 1800
        assert row.psnr == psnr(pixels, kmz.encode(pixels, k=row.k).to_array())
        assert row.seconds > 0


@pytest.mark.parametrize("coding", ["ctx", "mix"])
def test_rows_measure_the_files_of_a_coding(pixels, coding):
    raw = sweep.sweep(pixels, (4, 64))
    rows = sweep.sweep(pixels, (4, 64), coding=coding)
    for row, plain in zip(rows, raw):
        assert row.image.coding == coding
        assert row.kmz_bytes == len(row.image.tobytes()) != plain.kmz_bytes
        assert kmz.frombytes(row.image.tobytes()).coding == coding
        assert row.psnr == plain.psnr  # the same quantization: only the file differs


def test_a_coded_sweep_refuses_a_k_above_the_coded_limit_before_any_work(pixels, monkeypatch):
    monkeypatch.setattr(sweep, "encode", None)  # a call would fail with TypeError
    with pytest.raises(ValueError, match=f"coding ctx supports K up to {fmt.CODED_MAX_K}, not 5000"):
        sweep.sweep(pixels, (2, 5000), coding="ctx")
    with pytest.raises(ValueError, match="unknown coding 'zip'"):
        sweep.sweep(pixels, (2,), coding="zip")


def test_table_has_a_line_per_k(pixels):
    rows = sweep.sweep(pixels, (2, 700), input_bytes=None)
    lines = sweep.table(rows).splitlines()
    assert lines[0] == "| K | .kmz bytes | bits/pixel | of input | of raw 24-bit | PSNR dB | encode s |"
    assert len(lines) == 4
    two = rows[0]
    assert lines[2] == (
        f"| 2 | {two.kmz_bytes:,} | {two.bits_per_pixel:.3f} | n/a | {two.ratio_to_raw:.1%} "
        f"| {two.psnr:.2f} | {two.seconds:.2f} |"
    )
    assert lines[3].startswith("| 700 (600 used) | ")  # 600 pixels: at most 600 colours


def test_contact_sheet_shows_the_original_and_each_decoded_image(pixels):
    rows = sweep.sweep(pixels, KS, input_bytes=1234)
    sheet = sweep.contact_sheet(pixels, rows)
    # Four tiles in a 2 x 2 grid; each 30 x 20 image is pasted at full size.
    cell_w, cell_h = 30 + 8, 20 + sweep.LABEL_LINES * (sweep.FONT_SIZE + 4) + 8
    assert sheet.size == (8 + 2 * cell_w, 8 + 2 * cell_h)
    tiles = [pixels] + [row.image.to_array() for row in rows]
    for number, expected in enumerate(tiles):
        x, y = 8 + (number % 2) * cell_w, 8 + (number // 2) * cell_h
        assert np.array_equal(np.asarray(sheet.crop((x, y, x + 30, y + 20))), expected)
        label = np.asarray(sheet.crop((x, y + 20, x + cell_w - 8, y + cell_h - 8)))
        assert (label < 128).any()  # some dark text under each tile


def test_contact_sheet_shrinks_big_images():
    big = np.zeros((500, 1000, 3), dtype=np.uint8)
    rows = sweep.sweep(big, (2,))
    sheet = sweep.contact_sheet(big, rows)
    assert sheet.width == 8 + 2 * (sweep.TILE + 8)


def test_cli_sweep_prints_the_table_and_writes_the_pictures(capsys, png, tmp_path):
    pytest.importorskip("matplotlib")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert cli.main(["sweep", str(png), "--k", "8,2,4", "-o", str(out_dir)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == f"{png}: 30x20, {png.stat().st_size:,} bytes; raw 24-bit 1,800 bytes; .kmz files with coding raw"
    assert [line.split(" | ")[0] for line in lines[4:7]] == ["| 2", "| 4", "| 8"]
    assert lines[-2:] == [
        f"{out_dir / 'pic-sweep-sheet.png'}: contact sheet, the original and 3 K values",
        f"{out_dir / 'pic-sweep-chart.png'}: chart of bytes and PSNR against K",
    ]
    with Image.open(out_dir / "pic-sweep-sheet.png") as sheet:
        assert sheet.format == "PNG" and sheet.size[0] > 60
    with Image.open(out_dir / "pic-sweep-chart.png") as chart:
        assert chart.format == "PNG" and chart.size == (700, 420)
    # Existing outputs are kept unless --force.
    assert cli.main(["sweep", str(png), "--k", "2", "-o", str(out_dir)]) == 1
    assert "pic-sweep-sheet.png: exists (use --force to replace it)" in capsys.readouterr().err
    assert cli.main(["sweep", str(png), "--k", "2", "-o", str(out_dir), "--force"]) == 0


def test_cli_sweep_without_matplotlib_hints_and_still_writes_the_sheet(capsys, monkeypatch, png):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    assert cli.main(["sweep", str(png), "--k", "2,4"]) == 0
    out, err = capsys.readouterr()
    assert err == "kmz: note: install kmz[plot] for the chart\n"
    assert (png.parent / "pic-sweep-sheet.png").exists()
    assert not (png.parent / "pic-sweep-chart.png").exists()
    assert "chart" not in out


def test_cli_sweep_with_a_coding_measures_its_files(capsys, png, tmp_path):
    assert cli.main(["sweep", str(png), "-k", "2,8", "--coding", "mix", "-o", str(tmp_path), "-q"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("; .kmz files with coding mix")
    mix = [len(kmz.encode(png, k=k, coding="mix").tobytes()) for k in (2, 8)]
    assert [line.split(" | ")[1] for line in lines[4:6]] == [f"{size:,}" for size in mix]
    assert cli.main(["sweep", str(png), "-k", "2,5000", "--coding", "ctx", "-o", str(tmp_path), "--force"]) == 2
    assert f"--coding ctx supports K up to {fmt.CODED_MAX_K}, not 5000" in capsys.readouterr().err


def test_cli_sweep_prints_the_input_notes_as_encode_does(capsys, tmp_path):
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (4, 4), colour) for colour in ("red", "blue")]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    assert cli.main(["sweep", str(path), "-k", "2", "-q"]) == 0
    note = "kmz: note: the image has 2 frames; encoded the first (--frame N picks another)\n"
    assert capsys.readouterr().err == note + ("" if sweep.chart_available() else "kmz: note: install kmz[plot] for the chart\n")
    assert cli.main(["encode", str(path), "-k", "2"]) == 0
    assert capsys.readouterr().err == note


def test_cli_sweep_of_one_k_says_one_k_value(capsys, png, tmp_path):
    assert cli.main(["sweep", str(png), "-k", "4", "-o", str(tmp_path), "-q"]) == 0
    assert f"{tmp_path / 'pic-sweep-sheet.png'}: contact sheet, the original and 1 K value\n" in capsys.readouterr().out


def test_cli_sweep_interrupted_leaves_no_output_folder(capsys, monkeypatch, png, tmp_path):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "sweep", interrupted)  # Ctrl-C while encoding
    out_dir = tmp_path / "new" / "dir"
    assert cli.main(["sweep", str(png), "-k", "2", "-o", str(out_dir)]) == 130
    assert capsys.readouterr() == ("", "kmz: interrupted\n")
    assert not (tmp_path / "new").exists()


def test_cli_sweep_that_fails_leaves_no_output_folder(capsys, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    out_dir = tmp_path / "new"
    assert cli.main(["sweep", str(text), "-k", "2", "-o", str(out_dir)]) == 1
    assert capsys.readouterr().err == f"kmz: error: {text}: not an image Pillow can read\n"
    assert not out_dir.exists()


def test_cli_sweep_rejects_a_bad_k_list(capsys, png):
    assert cli.main(["sweep", str(png), "--k", "2,0"]) == 2
    assert "K must be between 1 and 65536, not 0" in capsys.readouterr().err
