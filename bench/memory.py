"""Peak memory and time of the command line against the library it wraps, as a
Markdown table: encode (K = 256) and decode of a 24-megapixel image.

    python bench/memory.py [IMAGE] [--corpus DIR]   # about 10 seconds

IMAGE defaults to the corpus's photos/wiki-001.png, tiled to 6000 x 4000 (24 MP).

Each row runs in a fresh process, which reports its own peak (VmHWM: the resident set
at its largest, interpreter and libraries included; common.peak_bytes), so that the
rows' peaks do not mix, nor take this process's. The library rows do what the command
does, through the API: kmz.encode + tobytes + a write, and kmz.open + save. The last
column is the command's peak over the library's.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import common

SOURCE = Path("photos") / "wiki-001.png"  # in the corpus
SIZE = (6000, 4000)
K = 256

# Each script prints its own peak (bytes) and CPU seconds as its last line.
MEASURED = """
import sys, time
from common import peak_bytes
start = time.process_time()
{body}
print(peak_bytes(), time.process_time() - start, file=sys.stderr)
"""
LIBRARY_ENCODE = """
import kmz
image = kmz.encode(sys.argv[1], k=int(sys.argv[3]))
data = image.tobytes()
with open(sys.argv[2], "wb") as f:
    f.write(data)
"""
LIBRARY_DECODE = """
import kmz
kmz.open(sys.argv[1]).save(sys.argv[2])
"""
CLI = """
from kmz.cli import main
status = main(sys.argv[1:])
assert status == 0, status
"""
IMPORT_ONLY = """
import kmz
"""


def tiled(source, folder):
    """The source image tiled (mirrored, so its edges meet) to SIZE, saved as PNG."""
    pixels = np.asarray(Image.open(source).convert("RGB"))
    pixels = np.concatenate([pixels, pixels[::-1]], axis=0)
    pixels = np.concatenate([pixels, pixels[:, ::-1]], axis=1)
    width, height = SIZE
    reps = (-(-height // pixels.shape[0]), -(-width // pixels.shape[1]), 1)
    path = folder / "tiled.png"
    Image.fromarray(np.tile(pixels, reps)[:height, :width]).save(path, compress_level=1)
    return path


def measure(body, *args):
    """(peak MiB, CPU s, wall s) of a fresh Python running body with sys.argv[1:] = args."""
    start = time.perf_counter()
    path = os.pathsep.join(map(str, [common.ROOT, common.ROOT / "bench"]))  # this clone's kmz; common
    done = subprocess.run([sys.executable, "-c", MEASURED.format(body=body), *map(str, args)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": path})
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(done.stderr)
    peak, cpu = done.stderr.split()[-2:]
    return int(peak) / 2**20, float(cpu), wall


def main(path, corpus):
    if path is None and not (corpus / SOURCE).is_file():
        sys.exit(f"no corpus at {corpus} (no {SOURCE} there): pass --corpus, or an IMAGE")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        path = Path(path) if path else tiled(corpus / SOURCE, folder)
        width, height = Image.open(path).size
        print(f"{path.name}: {width} x {height} = {width * height / 1e6:.1f} MP, K = {K}\n")
        base = measure(IMPORT_ONLY)
        rows = []
        library = measure(LIBRARY_ENCODE, path, folder / "lib.kmz", K)
        cli = measure(CLI, "encode", path, "-k", K, "-o", folder / "cli.kmz", "-q")
        rows += [("encode", "library", library, None), ("encode", "kmz encode", cli, cli[0] / library[0])]
        library = measure(LIBRARY_DECODE, folder / "lib.kmz", folder / "lib.png")
        cli = measure(CLI, "decode", folder / "lib.kmz", "-o", folder / "cli.png", "-q")
        rows += [("decode", "library", library, None), ("decode", "kmz decode", cli, cli[0] / library[0])]
    print(f"`import kmz` alone: {base[0]:,.0f} MiB, {base[1]:.2f} s CPU\n")
    print("| work | by | peak MiB | CPU s | wall s | command / library |")
    print("|---|---|---:|---:|---:|---:|")
    for work, by, (peak, cpu, wall), ratio in rows:
        print(f"| {work} | {by} | {peak:,.0f} | {cpu:.2f} | {wall:.2f} | {'' if ratio is None else f'{ratio:.2f}'} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image", nargs="?",
                        help="the image (default: the corpus's photos/wiki-001.png, tiled to 6000 x 4000)")
    common.add_corpus(parser)
    args = parser.parse_args()
    common.use_this_clone()  # the children import kmz as this process would
    main(args.image, args.corpus)
