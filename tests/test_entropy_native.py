"""The compiled coders of codings 1 and 2 (kmz._coding) within a process: they run
without the GIL, so threads code in parallel, and they stop promptly on Ctrl-C."""

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from kmz import entropy

ROOT = Path(__file__).resolve().parents[1]
CODED = ["ctx", "mix"]


def same_pixels(coding, palette, indices, decoded_palette, decoded):
    """ctx gives back the palette and indices; mix, which codes the palette in an order
    of its own, the same pixels."""
    if coding == "ctx":
        assert decoded_palette is palette and np.array_equal(decoded, indices)
    else:
        assert np.array_equal(decoded_palette[decoded], palette[indices])

# Noise at K = 4096: for ctx every pixel an escape with a long rank, for mix 12 coded
# bits, the slowest pixels to code, so a kernel that did not poll for Ctrl-C would
# answer it seconds late: about 4 s for ctx's 12 MP each way, several for mix's 2 MP
# (mix is the slower coder). The decoder gets the whole image in one call.
CHILD_SHAPES = {"ctx": (3000, 4000), "mix": (1000, 2000)}
INTERRUPTED_CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from kmz import entropy

    direction, coding, height, width = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rng = np.random.default_rng(0)
    indices = rng.integers(0, 4096, (height, width)).astype(np.uint16)
    palette = rng.integers(0, 256, (4096, 3)).astype(np.uint8)
    if direction == "decode":
        payload = entropy.encode(indices, palette, coding)
        entropy.CHUNK = indices.size
        given = palette.shape if coding == "mix" else palette  # mix's payload holds the palette
        work = lambda: entropy.decode(payload, given, width, height, coding=coding)
    else:
        work = lambda: entropy.encode(indices, palette, coding)
    print("ready", flush=True)
    try:
        while True:
            work()
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("coding", CODED)
@pytest.mark.parametrize("direction", ["encode", "decode"])
def test_ctrl_c_stops_the_coder_promptly(direction, coding):
    child = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_CHILD, direction, coding, *map(str, CHILD_SHAPES[coding])],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline() == "ready\n", child.stderr.read()
        time.sleep(0.5)  # well inside the first call
        child.send_signal(signal.SIGINT)
        sent = time.monotonic()
        assert child.stdout.readline() == "interrupted\n", child.stderr.read()
        latency = time.monotonic() - sent
        assert child.wait(timeout=10) == 0, child.stderr.read()  # no crash on the way out
    finally:
        child.kill()
        child.wait()
    assert latency < 1.5


@pytest.mark.parametrize("coding", CODED)
def test_threads_decode_in_parallel(coding):
    rng = np.random.default_rng(5)
    palette = rng.integers(0, 256, (64, 3)).astype(np.uint8)
    given = palette.shape if coding == "mix" else palette  # mix's payload holds the palette
    images = [np.repeat(rng.integers(0, 64, (100, 40)), 10, axis=1) for _ in range(4)]
    payloads = [entropy.encode(indices, palette, coding) for indices in images]
    start = threading.Barrier(len(images))
    results = [None] * len(images)

    def decode(n):
        start.wait()
        for _ in range(3):
            results[n] = entropy.decode(payloads[n], given, 400, 100, coding=coding)

    threads = [threading.Thread(target=decode, args=(n,)) for n in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for (decoded_palette, decoded), indices in zip(results, images):
        same_pixels(coding, palette, indices, decoded_palette, decoded)


@pytest.mark.slow
@pytest.mark.parametrize("coding, shape", [("ctx", (2000, 3000)), ("mix", (500, 1000))], ids=CODED)  # about 1 s each
def test_decoding_releases_the_gil(monkeypatch, coding, shape):
    # One kernel call decodes the whole image; meanwhile this thread keeps running. Were
    # the GIL held, it would stall for the whole call.
    rng = np.random.default_rng(6)
    palette = rng.integers(0, 256, (256, 3)).astype(np.uint8)
    indices = rng.integers(0, 256, shape)
    payload = entropy.encode(indices, palette, coding)
    given = palette.shape if coding == "mix" else palette  # mix's payload holds the palette
    monkeypatch.setattr(entropy, "CHUNK", indices.size)
    result = []
    height, width = shape
    worker = threading.Thread(target=lambda: result.append(entropy.decode(payload, given, width, height,
                                                                          coding=coding)))
    began = time.perf_counter()
    worker.start()
    ticks = [began]
    while worker.is_alive():
        time.sleep(0.001)
        ticks.append(time.perf_counter())
    worker.join()
    same_pixels(coding, palette, indices, *result[0])
    assert max(np.diff(ticks)) < 0.5 * (ticks[-1] - began)
