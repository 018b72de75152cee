"""What the batch tests share: small images, and a per-file function they pass to
kmz.batch.run in place of convert_file.

The function lives in a module of its own so that worker processes (a local pool's or a
Dask cluster's) can import it by name. A file whose name contains "poison" kills the
worker every time; one whose name contains "flaky" kills it once (a marker file
remembers), as an out-of-memory kill caused by a neighbour would. hang() stands for a
long encode: it leaves its process id beside the output, and waits.
"""

import os
import signal
import time

import numpy as np
from PIL import Image

from kmz.batch import convert_file

K = 8


def make_image(path, seed=0, size=16):
    """A size x size image of 40 colours, so K=8 is lossy; saved by suffix."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (40, 3), dtype=np.uint8)
    pixels = colours[rng.integers(0, 40, (size, size))]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return pixels


def kill_on_poison(source, target, job):
    name = os.path.basename(source)
    if "poison" in name:
        os.kill(os.getpid(), signal.SIGKILL)
    if "flaky" in name and not os.path.exists(source + ".died"):
        open(source + ".died", "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return convert_file(source, target, job)


def hang(source, target, job):
    with open(target + ".pid.tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(target + ".pid.tmp", target + ".pid")  # whole, when the test reads it
    time.sleep(60)
    return convert_file(source, target, job)
