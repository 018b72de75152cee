"""Write the atheris seed corpus: small valid .kmz files, one per index width.

    PYTHONPATH=. python tests/fuzz/make_seeds.py    # rewrites tests/fuzz/seeds/
"""

from pathlib import Path

import numpy as np

from kmz import format as fmt

SEEDS = Path(__file__).resolve().parent / "seeds"


def seed_files():
    """{name: bytes} of valid files: K = 1, 2, 3, 5, 16, 17, 256, 257, each on a
    3 x 5 image (odd sizes, so most have padding bits), indices cycling through K."""
    files = {}
    rng = np.random.default_rng(4)
    for k in (1, 2, 3, 5, 16, 17, 256, 257):
        header = fmt.Header(3, 5, k)
        palette = rng.integers(0, 256, (k, 3), dtype=np.uint8)
        indices = np.arange(15) % k
        files[f"k{k}_3x5.kmz"] = fmt.encode(header, palette, indices)
    return files


if __name__ == "__main__":
    SEEDS.mkdir(exist_ok=True)
    for name, data in seed_files().items():
        (SEEDS / name).write_bytes(data)
