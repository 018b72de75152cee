"""How much better than kmz can any palette of K colours do? Prints a Markdown table.

    python bench/headroom.py                      # photos at K=16, about 15 minutes
    python bench/headroom.py --sets kodak -k 256 --swaps 100

For nearest-colour mapping, PSNR is a function of the squared error, and the
palette that minimises that error is the global optimum of weighted k-means on
the image's distinct colours. kmz finds a local optimum; this bench searches
harder from it, with two methods kmz does not use:

- scikit-learn KMeans on the distinct colours (weighted), best of --inits starts;
- random swap (Franti, "Efficiency of random swap clustering", 2018): from kmz's
  palette, move one centre to a colour drawn by weight, run two Lloyd passes,
  keep the result when the error fell; --swaps times.

Each column is the PSNR gain over libimagequant at speed 1 (when the imagequant
package is installed) or else the PSNR itself. If neither search gets far above
kmz, no quantizer can: that is the ceiling for a goal stated against liq.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from quantizers import liq, load, lib  # noqa: E402

from kmz.image import psnr  # noqa: E402
from kmz.quantize import _Histogram, nearest, quantize  # noqa: E402


def squared_errors(colours, centres):
    """(nearest centre, squared distance to it) for each colour."""
    d = (colours**2).sum(axis=1)[:, None] - 2 * colours @ centres.T + (centres**2).sum(axis=1)[None, :]
    return d.argmin(axis=1), np.maximum(d.min(axis=1), 0)


def lloyd(colours, weights, centres, passes):
    """Weighted Lloyd passes; returns the centres and their weighted squared error."""
    for _ in range(passes):
        labels, _ = squared_errors(colours, centres)
        mass = np.bincount(labels, weights, len(centres))
        for j in range(3):
            total = np.bincount(labels, weights * colours[:, j], len(centres))
            centres[:, j] = np.where(mass > 0, total / np.maximum(mass, 1e-300), centres[:, j])
    return centres, float(weights @ squared_errors(colours, centres)[1])


def random_swap(colours, weights, centres, swaps, rng):
    centres, error = lloyd(colours, weights, centres.astype(np.float64), 10)
    for _ in range(swaps):
        trial = centres.copy()
        trial[rng.integers(len(trial))] = colours[rng.choice(len(colours), p=weights / weights.sum())]
        trial, trial_error = lloyd(colours, weights, trial, 2)
        if trial_error < error:
            centres, error = lloyd(colours, weights, trial, 10)
    return centres


def mapped_psnr(pixels, histogram, centres):
    palette = np.clip(np.rint(centres), 0, 255).astype(np.uint8)
    labels = histogram.pixel_labels(nearest(histogram.colours.astype(np.float32), palette))
    return psnr(pixels, palette[labels])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--sets", default="photos", help="corpus folders (default: photos)")
    parser.add_argument("-k", type=int, default=16, help="palette size (default: 16)")
    parser.add_argument("--inits", type=int, default=30, help="scikit-learn starts (default: 30)")
    parser.add_argument("--swaps", type=int, default=200, help="random swaps (default: 200)")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        sys.exit(f"no corpus at {args.corpus}: pass --corpus")
    if lib is None:
        print("imagequant is not installed (pip install -e .[bench]): PSNR shown, not gains over liq\n")
    print(f"K = {args.k}; dB {'over libimagequant speed 1' if lib is not None else 'PSNR'}\n")
    print(f"| set | image | distinct colours | kmz | sklearn best of {args.inits} | random swap x{args.swaps} |")
    print("|---|---|---:|---:|---:|---:|")
    number = "{:+.3f}" if lib is not None else "{:.3f}"
    columns = []
    for name in args.sets.split(","):
        paths = sorted((args.corpus / name).glob("*.png"))
        for path, image in zip(paths, load(args.corpus / name)):
            pixels = image.reshape(-1, 3)
            histogram = _Histogram(pixels)
            if len(histogram.colours) <= args.k:  # kmz is lossless there
                continue
            base = 0.0
            if lib is not None:
                palette, indices, _ = liq(1)(image, args.k, 0)
                base = psnr(image, palette[indices])
            q = quantize(pixels, args.k)
            colours, weights = histogram.colours.astype(np.float64), histogram.counts.astype(np.float64)
            km = KMeans(args.k, n_init=args.inits, random_state=0).fit(colours, sample_weight=weights)
            swapped = random_swap(colours, weights, q.palette, args.swaps, np.random.default_rng(0))
            row = [psnr(pixels, q.palette[q.labels]), mapped_psnr(pixels, histogram, km.cluster_centers_),
                   mapped_psnr(pixels, histogram, swapped)]
            row = [value - base for value in row]
            columns.append(row)
            print(f"| {name} | {path.name} | {len(colours)} | " + " | ".join(number.format(v) for v in row) + " |", flush=True)
    means = np.mean(columns, axis=0)
    print("| **mean** | | | " + " | ".join(f"**{number.format(v)}**" for v in means) + " |")


if __name__ == "__main__":
    main()
