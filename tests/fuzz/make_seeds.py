"""Write the atheris seed corpus: small valid .kmz files of both index codings.

    PYTHONPATH=. python tests/fuzz/make_seeds.py    # rewrites tests/fuzz/seeds/

raw-*.kmz are bit-packed (coding 0), ctx-*.kmz context-modelled (coding 1).
"""

from pathlib import Path

import numpy as np

from kmz import format as fmt

SEEDS = Path(__file__).resolve().parent / "seeds"


def _structured(rng, k, width, height):
    """Stripes with noise: runs that the ctx model predicts, and escapes it must rank."""
    y, x = np.mgrid[0:height, 0:width]
    indices = (x // 3 + (y > x)) % k
    noise = rng.random((height, width)) < 0.2
    indices[noise] = rng.integers(0, k, int(noise.sum()))
    return indices


def seed_files():
    """{name: bytes}. Raw: K = 1, 2, 3, 5, 16, 17, 256, 257, each on a 3 x 5 image (odd
    sizes, so most have padding bits), indices cycling through K. Ctx: the same images,
    and 12 x 9 stripes with noise at K = 2, 5, 40 and 300 (every path of the model:
    neighbour hits, escapes with small and large ranks)."""
    files = {}
    rng = np.random.default_rng(4)
    for k in (1, 2, 3, 5, 16, 17, 256, 257):
        palette = rng.integers(0, 256, (k, 3), dtype=np.uint8)
        indices = np.arange(15) % k
        for coding in (fmt.CODING_RAW, fmt.CODING_CTX):
            header = fmt.Header(3, 5, k, coding)
            files[f"{fmt.CODINGS[coding]}-k{k}_3x5.kmz"] = fmt.encode(header, palette, indices)
    for k in (2, 5, 40, 300):
        palette = rng.integers(0, 256, (k, 3), dtype=np.uint8)
        header = fmt.Header(12, 9, k, fmt.CODING_CTX)
        files[f"ctx-k{k}_12x9.kmz"] = fmt.encode(header, palette, _structured(rng, k, 12, 9))
    return files


if __name__ == "__main__":
    SEEDS.mkdir(exist_ok=True)
    for stale in SEEDS.glob("*.kmz"):
        stale.unlink()
    for name, data in seed_files().items():
        (SEEDS / name).write_bytes(data)
