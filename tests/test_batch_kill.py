"""kmz batch killed outright (SIGKILL): its workers die with it, and a rerun of the same
command gives every input one manifest line and a decodable output."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from batch_hooks import make_image
from PIL import Image

import kmz
from kmz import batch

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), str(ROOT)]))

# A batch of hang()s: the parent's pid on stdout, then every worker waits in a file.
HANGING_BATCH = """
import sys
from pathlib import Path

import batch_hooks
from kmz import batch

mode, src, dst = sys.argv[1:]
if mode == "polling":  # as on a system without prctl
    batch._parent_death_signal = lambda signum: False
if mode == "isolated":  # the process isolate_chunk runs a chunk in after a worker died
    batch.isolate_chunk([(str(src) + "/a.png", dst + "/a.kmz", False)], batch.Job(), batch_hooks.hang)
else:
    batch.run(batch.plan([src], dst), batch.Job(), manifest=dst + "/log", workers=2, convert=batch_hooks.hang)
"""


def alive(pid):
    """Whether pid runs (a zombie has ended: it only waits to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(condition, seconds):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
@pytest.mark.parametrize("mode", ["pool", "polling", "isolated"])
def test_workers_die_when_the_batch_is_killed(tmp_path, mode):
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_image(src / "a.png")
    make_image(src / "b.png", seed=1)
    dst.mkdir()
    parent = subprocess.Popen([sys.executable, "-c", HANGING_BATCH, mode, str(src), str(dst)], cwd=ROOT, env=ENV)
    workers = 1 if mode == "isolated" else 2
    try:
        assert wait_for(lambda: len(list(dst.glob("*.pid"))) == workers, 30)
        pids = [int(p.read_text()) for p in dst.glob("*.pid")]
        assert all(map(alive, pids)) and parent.pid not in pids
    finally:
        parent.kill()
        parent.wait()
    # prctl's signal is immediate; polling os.getppid() takes up to half a second.
    assert wait_for(lambda: not any(map(alive, pids)), 3), "a worker outlived the batch"


# The real command, killed at several moments ---------------------------------------

FILES = 60


def session_processes(sid):
    """Live processes of session sid (the killed batch started it, so its workers and any
    process they started are in it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # ended while we looked
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """60 images of 96x96 pixels, each of a few thousand colours: K=64 is real work."""
    src = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(7)
    for i in range(FILES):
        base = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
        pixels = np.kron(base, np.ones((8, 8, 1), dtype=np.uint8)) + rng.integers(0, 24, (96, 96, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(src / f"photo{i:02}.png")
    return src


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
@pytest.mark.parametrize("outputs", [0, 1, 20, 55])
def test_a_batch_killed_at_any_moment_resumes_with_one_line_per_input(tmp_path, photos, outputs):
    """Killed as soon as `outputs` files are written (0: while Python starts): moments
    defined by progress, not by time, so that they hold on a fast or a loaded machine."""
    dst = tmp_path / "dst"
    manifest = dst / batch.MANIFEST_NAME
    command = [sys.executable, "-m", "kmz", "batch", str(photos), "-o", str(dst), "-k", "64", "--workers", "2",
               "--chunk-size", "5", "--quiet"]
    run = subprocess.Popen(command, cwd=ROOT, env=ENV, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: len(list(dst.glob("*.kmz"))) >= outputs, 60)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert wait_for(lambda: not session_processes(run.pid), 3), f"still running: {session_processes(run.pid)}"
    written = {p.name for p in dst.glob("*.kmz")}
    before = manifest.read_text().splitlines(keepends=True) if manifest.exists() else []
    before = [line for line in before if line.endswith("\n")]  # a line cut short is dropped
    recorded = {Path(json.loads(line)["output"]).name for line in before}

    resumed = subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    lines = manifest.read_text().splitlines(keepends=True)
    assert lines[: len(before)] == before  # appended to, never rewritten
    records = [json.loads(line) for line in lines]
    assert sorted(Path(r["path"]).name for r in records) == sorted(p.name for p in photos.glob("*.png"))
    assert {r["status"] for r in records} == {"done"}
    # What the killed run wrote but did not record was checked and recorded, not redone.
    assert {Path(r["output"]).name for r in records if r["found"]} == written - recorded
    for record in records:
        image = kmz.open(record["output"])
        assert (image.k, record["k"], record["bytes"]) == (64, 64, os.path.getsize(record["output"]))
    assert len(list(dst.glob("*.kmz"))) == FILES
