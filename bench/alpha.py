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
Without imagequant (or pngquant) their columns show "-"; above K = 256, which neither
takes, "n/a". Exact results count as 99 dB.
"""

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import common
from quantizers import PALETTE_MAX, capped_psnr, lib, liq  # first: it imports this clone's kmz

from kmz.image import KmzImage
from kmz.quantize import quantize


def kmz_run(rgba, k):
    start = time.perf_counter()
    q = quantize(rgba.reshape(-1, 4), k)
    seconds = time.perf_counter() - start
    return q.palette[q.labels].reshape(rgba.shape), KmzImage(q.palette, q.labels.reshape(rgba.shape[:2])), seconds


def pngquant_run(pngquant, path, k, folder):
    out = Path(folder) / "out.png"
    subprocess.run([pngquant, "--nofs", "--speed", "1", "--force", "--output", str(out), str(k), str(path)],
                   check=True)
    with Image.open(out) as png:
        return np.asarray(png.convert("RGBA")), out.stat().st_size


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_corpus(parser)
    common.add_k(parser, [16, 64, 256])
    parser.add_argument("--limit", type=int, help="only the first N images")
    args = parser.parse_args()
    paths = common.pngs(args.corpus, "alpha")[: args.limit]
    images = [np.ascontiguousarray(Image.open(p).convert("RGBA")) for p in paths]
    if lib is None:
        common.missing("imagequant", 'the libimagequant columns show "-"', "pip install -e .[bench]")
    pngquant = common.find_pngquant('its columns show "-"')
    print(f"{len(paths)} RGBA images from {args.corpus / 'alpha'}\n")
    print("| K | kmz dB | pngquant dB | liq dB | kmz - pngquant | worst image | kmz bytes / pngquant PNG"
          " | kmz s | liq s | kmz / liq time |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for k in args.k:
            ours, theirs, liqs, kmz_bytes, png_bytes, kmz_s, liq_s = [], [], [], 0, 0, 0.0, 0.0
            worst = None
            for path, rgba in zip(paths, images):
                pixels, image, seconds = kmz_run(rgba, k)
                ours.append(capped_psnr(rgba, pixels))
                kmz_bytes += min(len(image.tobytes()), len(KmzImage(image.palette, image.indices, "ctx").tobytes()))
                kmz_s += seconds
                if pngquant and k <= PALETTE_MAX:
                    pq_pixels, pq_size = pngquant_run(pngquant, path, k, folder)
                    theirs.append(capped_psnr(rgba, pq_pixels))
                    png_bytes += pq_size
                    if worst is None or ours[-1] - theirs[-1] < worst[0]:
                        worst = (ours[-1] - theirs[-1], path.stem)
                if lib is not None and k <= PALETTE_MAX:
                    liq_palette, liq_indices, liq_seconds = liq(4)(rgba, k, 0)
                    liqs.append(capped_psnr(rgba, liq_palette[liq_indices]))
                    liq_s += liq_seconds
            absent = "n/a" if k > PALETTE_MAX else "-"
            pq_db, gap, worst_image, sizes = (absent,) * 4
            if theirs:
                pq_db, gap = f"{np.mean(theirs):.2f}", f"{np.mean(ours) - np.mean(theirs):+.2f}"
                worst_image = f"{worst[0]:+.2f} ({worst[1]})"
                sizes = f"{kmz_bytes:,} / {png_bytes:,} = {kmz_bytes / png_bytes:.2f}"
            liq_db, liq_time, ratio = (absent,) * 3
            if liqs:
                liq_db, liq_time, ratio = f"{np.mean(liqs):.2f}", f"{liq_s:.2f}", f"{kmz_s / liq_s:.2f}"
            print(f"| {k} | {np.mean(ours):.2f} | {pq_db} | {liq_db} | {gap} | {worst_image} | {sizes} "
                  f"| {kmz_s:.2f} | {liq_time} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
