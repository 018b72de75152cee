"""The compiled ctx coder (kmz._ctx) within a process: it runs without the GIL, so
threads code in parallel, and it stops promptly on Ctrl-C."""

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

# Noise at K = 4096: every pixel an escape with a long rank, the slowest pixels to code
# (about 4 s for 12 MP each way), so a kernel that did not poll for Ctrl-C would answer
# it seconds late. The decoder gets the whole image in one call.
INTERRUPTED_CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from kmz import entropy

    rng = np.random.default_rng(0)
    indices = rng.integers(0, 4096, (3000, 4000)).astype(np.uint16)
    palette = rng.integers(0, 256, (4096, 3)).astype(np.uint8)
    if sys.argv[1] == "decode":
        payload = entropy.encode(indices, palette)
        entropy.CHUNK = indices.size
        work = lambda: entropy.decode(payload, palette, 4000, 3000)
    else:
        work = lambda: entropy.encode(indices, palette)
    print("ready", flush=True)
    try:
        while True:
            work()
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("direction", ["encode", "decode"])
def test_ctrl_c_stops_the_coder_promptly(direction):
    child = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_CHILD, direction],
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


def test_threads_decode_in_parallel():
    rng = np.random.default_rng(5)
    palette = rng.integers(0, 256, (64, 3)).astype(np.uint8)
    images = [np.repeat(rng.integers(0, 64, (300, 40)), 10, axis=1) for _ in range(4)]
    payloads = [entropy.encode(indices, palette) for indices in images]
    start = threading.Barrier(len(images))
    results = [None] * len(images)

    def decode(n):
        start.wait()
        for _ in range(5):
            results[n] = entropy.decode(payloads[n], palette, 400, 300)

    threads = [threading.Thread(target=decode, args=(n,)) for n in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for decoded, indices in zip(results, images):
        assert np.array_equal(decoded, indices)


@pytest.mark.slow
def test_decoding_releases_the_gil(monkeypatch):
    # One kernel call decodes the whole image; meanwhile this thread keeps running. Were
    # the GIL held, it would stall for the whole call.
    rng = np.random.default_rng(6)
    palette = rng.integers(0, 256, (256, 3)).astype(np.uint8)
    indices = rng.integers(0, 256, (2000, 3000))
    payload = entropy.encode(indices, palette)
    monkeypatch.setattr(entropy, "CHUNK", indices.size)
    result = []
    worker = threading.Thread(target=lambda: result.append(entropy.decode(payload, palette, 3000, 2000)))
    began = time.perf_counter()
    worker.start()
    ticks = [began]
    while worker.is_alive():
        time.sleep(0.001)
        ticks.append(time.perf_counter())
    worker.join()
    assert np.array_equal(result[0], indices)
    assert max(np.diff(ticks)) < 0.5 * (ticks[-1] - began)
