import io
import re
import time

import numpy as np
import pytest

import kmz
from kmz import cli, progress
from kmz.progress import Progress


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


LINE = re.compile(r"^kmz: \d+\.\ds (.+)$")


def stages(stream):
    return [LINE.match(line).group(1) for line in stream.getvalue().splitlines()]


def test_terminal_shows_every_stage_once_past_the_delay():
    stream = FakeTerminal()
    with Progress(stream, delay=0) as report:
        report("reading x.png")
        report("quantizing K=64")
    assert stages(stream) == ["reading x.png", "quantizing K=64"]


@pytest.mark.parametrize(
    "stream, options",
    [(io.StringIO(), {"delay": 0}), (FakeTerminal(), {"quiet": True, "delay": 0}), (FakeTerminal(), {"delay": 60})],
    ids=["not a terminal", "quiet", "quick work"],
)
def test_shows_nothing(stream, options):
    with Progress(stream, **options) as report:
        report("reading x.png")
        report("quantizing K=64")
    assert stream.getvalue() == ""
    assert Progress(io.StringIO()).enabled is False


def test_long_work_shows_the_current_stage_when_the_delay_passes_then_each_new_one():
    stream = FakeTerminal()
    with Progress(stream, delay=0.05) as report:
        report("reading x.png")
        report("quantizing K=64")
        deadline = time.monotonic() + 5
        while not stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stages(stream) == ["quantizing K=64"]  # the stage in progress, not the past one
        report("packing")
    report("after close")
    assert stages(stream) == ["quantizing K=64", "packing"]


def test_encode_reports_its_stages_to_a_callback():
    pixels = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    seen = []
    kmz.encode(pixels, k=4, progress=seen.append)
    assert seen == ["quantizing K=4"]


def _encode_cli(tmp_path, monkeypatch, *flags):
    pixels = np.random.default_rng(2).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    source = tmp_path / "in.png"
    kmz.KmzImage(*_identity(pixels)).save(source)
    terminal = FakeTerminal()
    monkeypatch.setattr(progress, "DELAY", 0)
    monkeypatch.setattr("sys.stderr", terminal)
    assert cli.main(["encode", str(source), "-k", "4", *flags]) == 0
    return terminal


def _identity(pixels):
    palette, indices = np.unique(pixels.reshape(-1, 3), axis=0, return_inverse=True)
    return palette, indices.reshape(pixels.shape[:2])


def test_cli_encode_shows_its_stages_on_a_terminal(tmp_path, monkeypatch):
    terminal = _encode_cli(tmp_path, monkeypatch)
    assert stages(terminal) == [
        f"reading {tmp_path / 'in.png'}", "quantizing K=4", "measuring --coding ctx", f"writing {tmp_path / 'in.kmz'}",
    ]


def test_cli_encode_quiet_shows_nothing(tmp_path, monkeypatch):
    assert _encode_cli(tmp_path, monkeypatch, "--quiet").getvalue() == ""


@pytest.mark.parametrize("flags, shown", [((), True), (("-q",), False)])
def test_cli_decode_shows_its_stages_on_a_terminal(tmp_path, monkeypatch, flags, shown):
    _encode_cli(tmp_path, monkeypatch)
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert cli.main(["decode", str(tmp_path / "in.kmz"), "-o", str(tmp_path / "out.png"), *flags]) == 0
    expected = [f"reading {tmp_path / 'in.kmz'}", "decoding", f"writing {tmp_path / 'out.png'}"]
    assert stages(terminal) == (expected if shown else [])


def _cli_under_a_terminal(tmp_path, *args):
    """Run the CLI with stderr on a real pseudo-terminal (DELAY 0, so a quick encode
    counts as long); returns (stdout, what the terminal showed)."""
    pty = pytest.importorskip("pty")
    import os
    import subprocess
    import sys
    from pathlib import Path

    pixels = np.random.default_rng(3).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    source = tmp_path / "in.png"
    kmz.KmzImage(*_identity(pixels)).save(source)
    main, secondary = pty.openpty()
    code = "import sys, kmz.progress, kmz.cli; kmz.progress.DELAY = 0; sys.exit(kmz.cli.main(sys.argv[1:]))"
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", code, "encode", str(source), "-k", "4", *args],
        stdout=subprocess.PIPE, stderr=secondary, env={**os.environ, "PYTHONPATH": str(root)}, timeout=120,
    )
    os.close(secondary)
    shown = b""
    try:
        while chunk := os.read(main, 4096):
            shown += chunk
    except OSError:  # Linux signals the end of a closed pty with EIO
        pass
    os.close(main)
    assert done.returncode == 0
    return done.stdout.decode(), shown.decode().replace("\r\n", "\n")


def test_a_real_terminal_shows_the_stages(tmp_path):
    out, shown = _cli_under_a_terminal(tmp_path)
    assert out.startswith(f"{tmp_path / 'in.kmz'}: ")
    assert [LINE.match(line).group(1) for line in shown.splitlines()] == [
        f"reading {tmp_path / 'in.png'}", "quantizing K=4", "measuring --coding ctx", f"writing {tmp_path / 'in.kmz'}",
    ]


def test_a_real_terminal_shows_nothing_when_quiet(tmp_path):
    assert _cli_under_a_terminal(tmp_path, "--quiet")[1] == ""
