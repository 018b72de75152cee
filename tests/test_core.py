"""The compiled core: what `import kmz` loads, large K, threads, and Ctrl-C.

The kernels' arithmetic is pinned by tests/test_golden.py; this file covers what the
move from a JIT to an extension built at install time promises besides."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kmz.quantize import nearest, quantize

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def test_import_loads_no_jit_scipy_or_scikit_learn():
    probe = "import sys, kmz; print(' '.join(sorted(sys.modules)))"
    loaded = set(subprocess.run([sys.executable, "-c", probe], env=ENV, capture_output=True, text=True,
                                check=True).stdout.split())
    assert "kmz._kmeans" in loaded
    for heavy in ("numba", "llvmlite", "scipy", "sklearn"):
        assert not any(name == heavy or name.startswith(heavy + ".") for name in loaded), heavy


def test_sweep_and_batch_are_attributes_loaded_when_first_used():
    probe = ("import sys, kmz; before = {'kmz.sweep', 'kmz.batch'} & set(sys.modules); "
             "print(sorted(before), kmz.sweep.sweep.__module__, kmz.batch.run.__module__)")
    out = subprocess.run([sys.executable, "-c", probe], env=ENV, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[]", "kmz.sweep", "kmz.batch"]


def brute_force_nearest(points, palette):
    d = ((points[:, None, :].astype(np.int64) - palette[None, :, :].astype(np.int64)) ** 2).sum(2)
    return d.min(axis=1)


@pytest.mark.parametrize("k", [1500, 4096])
def test_large_k_labels_are_nearest_entries(k):
    """Above the neighbour-table limit the search walks a grid: it must still find
    the nearest entry of every pixel."""
    rng = np.random.default_rng(k)
    pixels = rng.integers(0, 256, (20000, 3), dtype=np.uint8)
    result = quantize(pixels, k)
    assert len(np.unique(result.palette, axis=0)) > k * 0.9
    got = ((pixels.astype(np.int64) - result.palette[result.labels].astype(np.int64)) ** 2).sum(1)
    assert np.array_equal(got, brute_force_nearest(pixels, result.palette))


def test_nearest_finds_the_lowest_numbered_of_the_nearest():
    rng = np.random.default_rng(1)
    palette = rng.integers(0, 256, (3000, 3)).astype(np.float64)
    palette[7] = palette[2999]  # a tie: entry 7 must win
    points = rng.integers(0, 256, (5000, 3)).astype(np.float32)
    points[0] = palette[2999]
    labels = nearest(points, palette)
    best = brute_force_nearest(points.astype(np.uint8), palette.astype(np.uint8))
    got = ((points - palette[labels]) ** 2).sum(1)
    assert np.array_equal(got, best)
    assert labels[0] == 7


@pytest.mark.slow
def test_k_65536_on_random_pixels_finishes():
    """Every K is practical: the bench times this (at most 20 s); here it must finish
    and label every colour with its nearest entry."""
    pixels = np.random.default_rng(0).integers(0, 256, (70000, 3), dtype=np.uint8)
    result = quantize(pixels, 65536)
    assert len(result.palette) == 65536
    got = ((pixels.astype(np.int64) - result.palette[result.labels].astype(np.int64)) ** 2).sum(1)
    sample = slice(0, 2000)  # the brute force is K times the pixels: check a slice
    assert np.array_equal(got[sample], brute_force_nearest(pixels[sample], result.palette))


def test_threads_quantize_in_parallel_with_the_same_result():
    """The kernels release the GIL; results do not depend on what else runs."""
    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, (60000, 3), dtype=np.uint8) for _ in range(4)]
    alone = [quantize(image, 64, seed=3).palette for image in images]
    together = [None] * 4

    def work(i):
        together[i] = quantize(images[i], 64, seed=3).palette

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(np.array_equal(a, b) for a, b in zip(alone, together))


@pytest.fixture(scope="module")
def big_image(tmp_path_factory):
    """A 12 MP photograph-like image: long enough to interrupt at several moments."""
    folder = tmp_path_factory.mktemp("big")
    sample = np.asarray(Image.open(ROOT / "samples" / "kodim03.png").convert("RGB"))
    tiles = np.tile(sample, (16, 16, 1))[:3000, :4000]
    noise = np.random.default_rng(0).integers(0, 8, tiles.shape, dtype=np.uint8)
    path = folder / "big.png"
    Image.fromarray(tiles + noise).save(path, compress_level=1)
    return path


# The `kmz` command, as its console script runs it (python -m kmz imports the package
# before any of its code runs, so a Ctrl-C during that import is Python's to report).
KMZ = [sys.executable, "-c", "import sys, kmz_launch; sys.exit(kmz_launch.main())"]


def interrupt(args, delay, folder):
    """Run kmz with args, send SIGINT after `delay` seconds; (status, stderr)."""
    process = subprocess.Popen([*KMZ, *args], env=ENV, cwd=folder,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr


def duration(args, folder):
    """Wall seconds of one uninterrupted run (which must succeed)."""
    start = time.monotonic()
    subprocess.run([*KMZ, *args], env=ENV, cwd=folder, check=True, capture_output=True)
    return time.monotonic() - start


# Moments of the interrupt, as fractions of an uninterrupted run: during the imports,
# reading, quantizing or decoding, and writing.
FRACTIONS = [0.1, 0.3, 0.5, 0.7, 0.85]


@pytest.fixture(scope="module")
def encode_seconds(big_image, tmp_path_factory):
    return duration(["encode", str(big_image), "-o", "out.kmz", "-k", "256"], tmp_path_factory.mktemp("timing"))


@pytest.mark.slow
@pytest.mark.parametrize("fraction", FRACTIONS)
def test_ctrl_c_during_encode_exits_130_and_leaves_nothing(big_image, encode_seconds, tmp_path, fraction):
    status, stderr = interrupt(["encode", str(big_image), "-o", "out.kmz", "-k", "256"], fraction * encode_seconds,
                               tmp_path)
    if status == 0 and fraction == FRACTIONS[-1]:
        pytest.skip("the encode finished before the interrupt (a loaded machine)")
    assert status == 130, stderr
    assert stderr.strip().splitlines() == ["kmz: interrupted"]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("coding", ["raw", "ctx"])
@pytest.mark.parametrize("fraction", FRACTIONS)
def test_ctrl_c_during_decode_exits_130_and_leaves_nothing(big_image, tmp_path, coding, fraction):
    encoded = tmp_path / f"big-{coding}.kmz"
    subprocess.run([sys.executable, "-m", "kmz", "encode", str(big_image), "-o", str(encoded), "-k", "256",
                    "--coding", coding, "-q"], env=ENV, check=True, capture_output=True)
    args = ["decode", str(encoded), "-o", "out.png"]
    seconds = duration([*args, "--force"], tmp_path)
    (tmp_path / "out.png").unlink()
    status, stderr = interrupt(args, fraction * seconds, tmp_path)
    if status == 0 and fraction == FRACTIONS[-1]:
        pytest.skip("the decode finished before the interrupt (a loaded machine)")
    assert status == 130, stderr
    assert stderr.strip().splitlines() == ["kmz: interrupted"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [encoded.name]
