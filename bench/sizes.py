"""Sizes and quality of .kmz on a sample at K = 2 .. 256, as the Markdown table in
docs/sizes.md.

    python bench/sizes.py [IMAGE]      # default: samples/kodim03.png
"""

import argparse
from pathlib import Path

import common

common.use_this_clone()
import kmz  # noqa: E402
from kmz import io  # noqa: E402
from kmz.image import psnr  # noqa: E402

DEFAULT = common.ROOT / "samples" / "kodim03.png"


def main(path=DEFAULT):
    path = Path(path)
    pixels = io.read_image(path)
    height, width = pixels.shape[:2]
    n = width * height
    raw, png = 3 * n, path.stat().st_size
    print(f"{path.name}: {width} x {height} = {n:,} pixels; raw 24-bit RGB {raw:,} bytes; "
          f"PNG input {png:,} bytes\n")
    print("| K | .kmz bytes | bits per pixel | % of raw RGB | % of the PNG | PSNR (dB) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for k in (2, 4, 8, 16, 32, 64, 128, 256):
        image = kmz.encode(pixels, k=k)
        size = len(image.tobytes())
        print(f"| {k} | {size:,} | {8 * size / n:.3f} | {100 * size / raw:.1f} | {100 * size / png:.1f} "
              f"| {psnr(pixels, image.to_array()):.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image", nargs="?", default=DEFAULT, help="the image (default: samples/kodim03.png)")
    main(parser.parse_args().image)
