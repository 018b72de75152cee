"""Write the atheris seed corpus: small valid .kmz files of every index coding.

    PYTHONPATH=. python tests/fuzz/make_seeds.py    # rewrites tests/fuzz/seeds/

raw-*.kmz are bit-packed (coding 0), ctx-*.kmz context-modelled (coding 1), mix-*.kmz
context-mixed (coding 2). Coding 2's model may still change: rerun this after each
change to it (tests/fuzz/test_seeds.py fails until then).
"""

from pathlib import Path

import numpy as np

from kmz import format as fmt

SEEDS = Path(__file__).resolve().parent / "seeds"


def _structured(rng, k, width, height):
    """Stripes with noise: runs that the models predict, and surprises (ctx's escapes)."""
    y, x = np.mgrid[0:height, 0:width]
    indices = (x // 3 + (y > x)) % k
    noise = rng.random((height, width)) < 0.2
    indices[noise] = rng.integers(0, k, int(noise.sum()))
    return indices


def seed_files():
    """{name: bytes}. Raw: K = 1, 2, 3, 5, 16, 17, 256, 257, each on a 3 x 5 image (odd
    sizes, so most have padding bits), indices cycling through K. Ctx and mix: the same
    images; 12 x 9 stripes with noise at K = 2, 5, 40 and 300 (every path of the models:
    neighbour hits, ctx's escapes with small and large ranks, mix's positions of 1 to 9
    bits); 40 x 6 stripes at K = 5, wider than mix's 32-pixel match context; and an RGBA
    palette."""
    files = {}
    rng = np.random.default_rng(4)
    coded = (fmt.CODING_CTX, fmt.CODING_MIX)
    for k in (1, 2, 3, 5, 16, 17, 256, 257):
        palette = rng.integers(0, 256, (k, 3), dtype=np.uint8)
        indices = np.arange(15) % k
        for coding in (fmt.CODING_RAW, *coded):
            header = fmt.Header(3, 5, k, coding)
            files[f"{fmt.CODINGS[coding]}-k{k}_3x5.kmz"] = fmt.encode(header, palette, indices)
    for k, width, height, channels in [(2, 12, 9, 3), (5, 12, 9, 3), (40, 12, 9, 3), (300, 12, 9, 3),
                                       (5, 40, 6, 3), (12, 11, 6, 4)]:
        palette = rng.integers(0, 256, (k, channels), dtype=np.uint8)
        indices = _structured(rng, k, width, height)
        rgba = "-rgba" if channels == 4 else ""
        for coding in coded:
            header = fmt.Header(width, height, k, coding, alpha=channels == 4)
            files[f"{fmt.CODINGS[coding]}-k{k}_{width}x{height}{rgba}.kmz"] = fmt.encode(header, palette, indices)
    return files


if __name__ == "__main__":
    SEEDS.mkdir(exist_ok=True)
    for stale in SEEDS.glob("*.kmz"):
        stale.unlink()
    for name, data in seed_files().items():
        (SEEDS / name).write_bytes(data)
