"""kmz against pngquant and libimagequant on RGBA images (issue 13).

    pip install -e .[bench]      # imagequant: libimagequant, the engine of pngquant
    python bench/alpha.py        # corpus/alpha at K = 16, 64, 256; --help for options

Quality is what a viewer sees: each image composited over black and over white (RGB,
floating point), PSNR from the mean of the two MSEs (kmz.image.psnr on RGBA). Per K:
mean PSNR of kmz, of pngquant (`--nofs --speed 1`, its PNG read back) and of
libimagequant at its default speed (no dithering); kmz's worst per-image margin over
pngquant; the size of kmz's smallest file (the smaller of the raw and ctx codings)
against pngquant's PNG; and kmz's in-process time (quantize and map) against
libimagequant's (quantize and remap), both from the RGBA buffer, summed over images.
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

from kmz.image import KmzImage, psnr  # noqa: E402
from kmz.quantize import quantize  # noqa: E402

from imagequant._libimagequant import ffi, lib  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"


def kmz_run(rgba, k):
    start = time.perf_counter()
    q = quantize(rgba.reshape(-1, 4), k)
    seconds = time.perf_counter() - start
    return q.palette[q.labels].reshape(rgba.shape), KmzImage(q.palette, q.labels.reshape(rgba.shape[:2])), seconds


def liq_run(rgba, k):
    """libimagequant at its default speed (4), no dithering."""
    h, w = rgba.shape[:2]
    start = time.perf_counter()
    attr = lib.liq_attr_create()
    lib.liq_set_max_colors(attr, k)
    image = lib.liq_image_create_rgba(attr, ffi.from_buffer(rgba), w, h, 0)
    result = ffi.new("liq_result**")
    if lib.liq_image_quantize(image, attr, result) != lib.LIQ_OK:
        raise RuntimeError("libimagequant failed")
    lib.liq_set_dithering_level(result[0], 0.0)
    indices = np.empty((h, w), dtype=np.uint8)
    lib.liq_write_remapped_image(result[0], image, ffi.from_buffer(indices), h * w)
    entries = lib.liq_get_palette(result[0])
    seconds = time.perf_counter() - start
    palette = np.array([[e.r, e.g, e.b, e.a] for e in entries.entries[0 : entries.count]], dtype=np.uint8)
    lib.liq_result_destroy(result[0])
    lib.liq_image_destroy(image)
    lib.liq_attr_destroy(attr)
    return palette[indices], seconds


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
    print("| K | kmz dB | pngquant dB | liq dB | kmz - pngquant | worst image | kmz bytes / pngquant PNG"
          " | kmz s | liq s | kmz / liq time |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for k in args.k:
            ours, theirs, liqs, kmz_bytes, png_bytes, kmz_s, liq_s = [], [], [], 0, 0, 0.0, 0.0
            worst = None
            for path, rgba in zip(paths, images):
                pixels, image, seconds = kmz_run(rgba, k)
                liq_pixels, liq_seconds = liq_run(rgba, k)
                pq_pixels, pq_size = pngquant_run(path, k, folder)
                # Lossless results give inf: cap at 99 dB, so that means stay finite.
                a, b = (min(psnr(rgba, x), 99.0) for x in (pixels, pq_pixels))
                ours.append(a)
                theirs.append(b)
                liqs.append(min(psnr(rgba, liq_pixels), 99.0))
                if worst is None or a - b < worst[0]:
                    worst = (a - b, path.stem)
                kmz_bytes += min(len(image.tobytes()), len(KmzImage(image.palette, image.indices, "ctx").tobytes()))
                png_bytes += pq_size
                kmz_s += seconds
                liq_s += liq_seconds
            print(f"| {k} | {np.mean(ours):.2f} | {np.mean(theirs):.2f} | {np.mean(liqs):.2f} "
                  f"| {np.mean(ours) - np.mean(theirs):+.2f} | {worst[0]:+.2f} ({worst[1]}) "
                  f"| {kmz_bytes:,} / {png_bytes:,} = {kmz_bytes / png_bytes:.2f} "
                  f"| {kmz_s:.2f} | {liq_s:.2f} | {kmz_s / liq_s:.2f} |", flush=True)


if __name__ == "__main__":
    main()
