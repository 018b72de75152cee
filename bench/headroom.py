"""How much better than kmz can any palette of K colours do? Prints a Markdown table.

    python bench/headroom.py                      # photos at K=16, about 15 minutes
    python bench/headroom.py --sets kodak -k 256 --swaps 100      # one table per K

For nearest-colour mapping, PSNR is a function of the squared error, and the
palette that minimises that error is the global optimum of weighted k-means on
the image's distinct colours. kmz finds a local optimum; this bench searches
harder from it, with two methods kmz does not use:

- scikit-learn KMeans on the distinct colours (weighted), best of --inits starts;
- random swap (Franti, "Efficiency of random swap clustering", 2018): from kmz's
  palette, move one centre to a colour drawn by weight, run two Lloyd passes,
  keep the result when the error fell; --swaps times.

Each column is the PSNR gain over libimagequant at speed 1 (when the imagequant
package is installed and K <= 256) or else the PSNR itself. If neither search gets
far above kmz, no quantizer can: that is the ceiling for a goal stated against liq.
"""

import argparse
import sys

import numpy as np
from sklearn.cluster import KMeans

import common
from quantizers import PALETTE_MAX, lib, liq, load  # first: it imports this clone's kmz

from kmz.image import psnr
from kmz.quantize import _Histogram, nearest, quantize


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
    common.add_corpus(parser)
    common.add_list(parser, "--sets", default=["photos"], metavar="SET",
                    help="corpus folders, space-separated (default: photos)")
    common.add_k(parser, [16])
    parser.add_argument("--inits", type=int, default=30, help="scikit-learn starts (default: 30)")
    parser.add_argument("--swaps", type=int, default=200, help="random swaps (default: 200)")
    args = parser.parse_args()
    paths = [(name, path) for name in args.sets for path in common.pngs(args.corpus, name)]
    if lib is None:
        common.missing("imagequant", "PSNR shown, not gains over liq", "pip install -e .[bench]")
    images = [(name, path, image, _Histogram(image.reshape(-1, 3)))
              for (name, path), image in zip(paths, load(path for _, path in paths))]
    for number, k in enumerate(args.k):
        # kmz is lossless on images of no more than K colours: nothing to search there.
        above = [row for row in images if len(row[3].colours) > k]
        if not above:
            sys.exit(f"no images above {k} colours in {' '.join(args.sets)}")
        print("\n" * (number > 0), end="")
        table(above, k, args.inits, args.swaps)


def table(images, k, inits, swaps):
    gains = lib is not None and k <= PALETTE_MAX
    print(f"K = {k}; dB {'over libimagequant speed 1' if gains else 'PSNR'}\n")
    print(f"| set | image | distinct colours | kmz | sklearn best of {inits} | random swap x{swaps} |")
    print("|---|---|---:|---:|---:|---:|")
    number = "{:+.3f}" if gains else "{:.3f}"
    columns = []
    for name, path, image, histogram in images:
        pixels = image.reshape(-1, 3)
        base = 0.0
        if gains:
            palette, indices, _ = liq(1)(image, k, 0)
            base = psnr(image, palette[indices])
        q = quantize(pixels, k)
        colours, weights = histogram.colours.astype(np.float64), histogram.counts.astype(np.float64)
        km = KMeans(k, n_init=inits, random_state=0).fit(colours, sample_weight=weights)
        swapped = random_swap(colours, weights, q.palette, swaps, np.random.default_rng(0))
        row = [psnr(pixels, q.palette[q.labels]), mapped_psnr(pixels, histogram, km.cluster_centers_),
               mapped_psnr(pixels, histogram, swapped)]
        row = [value - base for value in row]
        columns.append(row)
        print(f"| {name} | {path.name} | {len(colours)} | " + " | ".join(number.format(v) for v in row) + " |",
              flush=True)
    means = np.mean(columns, axis=0)
    print("| **mean** | | | " + " | ".join(f"**{number.format(v)}**" for v in means) + " |")


if __name__ == "__main__":
    main()
