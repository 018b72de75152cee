"""kmz against pngquant and libimagequant on RGBA images.

    pip install -e .[bench]      # imagequant: libimagequant, the engine of pngquant
    python bench/alpha.py        # corpus/alpha at K = 16, 64, 256; --help for options

Quality is what a viewer sees: each image composited over black and over white (RGB,
floating point), PSNR from the mean of the two MSEs (kmz.image.psnr on RGBA). Per K:
mean PSNR of kmz, of pngquant (`--nofs --speed 1`, its PNG read back) and of
libimagequant at its default speed (no dithering); kmz's worst per-image margin over
pngquant; the size of kmz's smallest file (the smaller of the raw and ctx codings)
against pngquant's PNG; and kmz's in-process time (quantize and map) against
libimagequant's (quantize and remap), both from the RGBA buffer, summed over images.
Without imagequant the libimagequant columns are left out.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from kmz.image import KmzImage, psnr  # noqa: E402
from kmz.quantize import quantize  # noqa: E402
from quantizers import lib, liq  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"


def kmz_run(rgba, k):
    start = time.perf_counter()
    q = quantize(rgba.reshape(-1, 4), k)
    seconds = time.perf_counter() - start
    return q.palette[q.labels].reshape(rgba.shape), KmzImage(q.palette, q.labels.reshape(rgba.shape[:2])), seconds


def pngquant_run(path, k, folder):
    out = Path(folder) / "out.png"
    subprocess.run(["pngquant", "--nofs", "--speed", "1", "--force", "--output", str(out), str(k), str(path)],
                   check=True)
    with Image.open(out) as png:
        return np.asarray(png.convert("RGBA")), out.stat().st_size


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("-k", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--limit", type=int, help="only the first N images")
    args = parser.parse_args()
    paths = sorted((args.corpus / "alpha").glob("*.png"))[: args.limit]
    images = [np.ascontiguousarray(Image.open(p).convert("RGBA")) for p in paths]
    print(f"{len(paths)} RGBA images from {args.corpus / 'alpha'}\n")
    if lib is None:
        print("imagequant is not installed (pip install -e .[bench]): the libimagequant columns are left out.\n")
    liq_default = liq(4) if lib is not None else None
    print("| K | kmz dB | pngquant dB | liq dB | kmz - pngquant | worst image | kmz bytes / pngquant PNG"
          " | kmz s | liq s | kmz / liq time |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for k in args.k:
            ours, theirs, liqs, kmz_bytes, png_bytes, kmz_s, liq_s = [], [], [], 0, 0, 0.0, 0.0
            worst = None
            for path, rgba in zip(paths, images):
                pixels, image, seconds = kmz_run(rgba, k)
                pq_pixels, pq_size = pngquant_run(path, k, folder)
                # Lossless results give inf: cap at 99 dB, so that means stay finite.
                a, b = (min(psnr(rgba, x), 99.0) for x in (pixels, pq_pixels))
                ours.append(a)
                theirs.append(b)
                if liq_default:
                    liq_palette, liq_indices, liq_seconds = liq_default(rgba, k, 0)
                    liqs.append(min(psnr(rgba, liq_palette[liq_indices]), 99.0))
                    liq_s += liq_seconds
                if worst is None or a - b < worst[0]:
                    worst = (a - b, path.stem)
                kmz_bytes += min(len(image.tobytes()), len(KmzImage(image.palette, image.indices, "ctx").tobytes()))
                png_bytes += pq_size
                kmz_s += seconds
            liq_db, liq_time, ratio = ("-",) * 3
            if liqs:
                liq_db, liq_time, ratio = f"{np.mean(liqs):.2f}", f"{liq_s:.2f}", f"{kmz_s / liq_s:.2f}"
            print(f"| {k} | {np.mean(ours):.2f} | {np.mean(theirs):.2f} | {liq_db} "
                  f"| {np.mean(ours) - np.mean(theirs):+.2f} | {worst[0]:+.2f} ({worst[1]}) "
                  f"| {kmz_bytes:,} / {png_bytes:,} = {kmz_bytes / png_bytes:.2f} "
                  f"| {kmz_s:.2f} | {liq_time} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
