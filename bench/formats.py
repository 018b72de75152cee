"""kmz against the formats a user would otherwise pick: file size at a given quality.

    python bench/formats.py [--corpus DIR] [-k 64 256] [--sets kodak photos screens waterloo]

For every set of the corpus and every K, one Markdown table: mean bits per pixel of
each format and its mean per-image size relative to kmz ctx's file; its title gives
kmz's PSNR over the set (10 log10(255^2 / mean MSE)) and how many images kmz stored
losslessly (no more than K colours). Every format gets the same 8-bit RGB pixels (read
as kmz reads them: transparency composited onto white).

- kmz ctx and kmz raw: kmz.encode at K (the ctx file, and the raw formula's size).
- PNG-8: Pillow's palette PNG (optimize=True) of kmz's own palette and indices: the
  same pixels as kmz, so only the coding of the indices differs.
- PNG-24 and WebP lossless: the original pixels, losslessly (Pillow, optimize=True;
  libwebp lossless at Pillow's defaults, quality 80 and method 4, as cwebp -lossless).
- JPEG at kmz's PSNR: the smallest file (quality searched, 4:2:0 and 4:4:4 chroma
  both tried) whose PSNR reaches that of kmz at K for the same image; images where
  even quality 100 does not reach it are counted, and left out of JPEG's mean ("-" when
  that is every image).

Prints Markdown; takes a few minutes for the four sets.
"""

import argparse
import io
import math
import statistics

from PIL import Image

import common

common.use_this_clone()
import kmz  # noqa: E402
from kmz.image import psnr  # noqa: E402
from kmz.io import read_image  # noqa: E402


def saved_size(image, **options):
    buffer = io.BytesIO()
    image.save(buffer, **options)
    return buffer.tell(), buffer


def jpeg_size_at(pixels, target_db):
    """Bytes of the smallest JPEG whose PSNR reaches target_db, or None."""
    image = Image.fromarray(pixels)
    best = None
    for subsampling in (2, 0):  # 4:2:0, 4:4:4

        def reaches(quality):
            size, buffer = saved_size(image, format="JPEG", quality=quality, subsampling=subsampling)
            buffer.seek(0)
            return size if psnr(pixels, read_image(buffer)) >= target_db else None

        low, high = 1, 100
        if reaches(high) is None:
            continue
        while low < high:  # PSNR grows with quality, in practice monotonically enough
            middle = (low + high) // 2
            if reaches(middle) is None:
                low = middle + 1
            else:
                high = middle
        size = reaches(high)
        best = size if best is None else min(best, size)
    return best


def measure(pixels, k):
    """(kmz's mean squared error, {format: bytes}) for one image at K; JPEG's bytes may be None."""
    encoded = kmz.encode(pixels, k=k, coding="ctx")
    original = Image.fromarray(pixels)
    error = float(((pixels.astype(float) - encoded.to_array()) ** 2).mean())
    return error, {
        "kmz ctx": len(encoded.tobytes()),
        "kmz raw": kmz.format.file_size(encoded.width, encoded.height, encoded.k),
        "PNG-8 (same palette and indices)": saved_size(encoded.to_pil(), format="PNG", optimize=True)[0],
        "PNG-24 (lossless)": saved_size(original, format="PNG", optimize=True)[0],
        "WebP lossless": saved_size(original, format="WEBP", lossless=True)[0],
        "JPEG at kmz's PSNR": jpeg_size_at(pixels, psnr(pixels, encoded.to_array())),
    }


def table(set_name, k, rows, errors):
    """rows: [(pixels, {format: bytes})], errors: kmz's MSE per image -> a Markdown table."""
    formats = list(rows[0][1])
    mean_error = statistics.mean(errors)
    pooled = "inf" if mean_error == 0 else f"{10 * math.log10(255**2 / mean_error):.2f}"
    lossless = sum(error == 0 for error in errors)
    lines = [
        f"**{set_name}, K = {k}** ({len(rows)} images; kmz PSNR {pooled} dB, {lossless} stored losslessly)",
        "",
        "| format | bits/pixel | size vs kmz ctx |",
        "|---|---:|---:|",
    ]
    for name in formats:
        kept = [(n, sizes) for n, sizes in rows if sizes[name] is not None]
        if not kept:
            lines.append(f"| {name} (all {len(rows)} never reach kmz's PSNR) | - | - |")
            continue
        bits = 8 * sum(sizes[name] for _, sizes in kept) / sum(n for n, _ in kept)
        ratio = statistics.mean(sizes[name] / sizes["kmz ctx"] for _, sizes in kept)
        missed = len(rows) - len(kept)
        note = f" ({missed} of {len(rows)} images never reach kmz's PSNR)" if missed else ""
        lines.append(f"| {name}{note} | {bits:.3f} | {ratio:.2f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_corpus(parser)
    common.add_k(parser, [64, 256])
    common.add_list(parser, "--sets", default=["kodak", "photos", "screens", "waterloo"], metavar="SET",
                    help="corpus folders, space-separated (default: kodak photos screens waterloo)")
    args = parser.parse_args()
    paths = {set_name: common.pngs(args.corpus, set_name) for set_name in args.sets}
    for set_name in args.sets:
        images = [read_image(path) for path in paths[set_name]]
        for k in args.k:
            errors, rows = [], []
            for image in images:
                error, sizes = measure(image, k)
                errors.append(error)
                rows.append((image.shape[0] * image.shape[1], sizes))
            print(table(set_name, k, rows, errors) + "\n", flush=True)


if __name__ == "__main__":
    main()
