"""Compare colour quantizers on the shared corpus and print a Markdown table.

    pip install -e .[bench]        # imagequant: libimagequant, the engine of pngquant
    python bench/quantizers.py     # about 20 minutes on 2 busy cores; --help for options

Every method runs on every image in the same process, interleaved, so machine load
hits them alike; times are medians per image and ratios are medians of per-image
ratios. No dithering anywhere. Quality is RGB PSNR over all channels of the
quantized image (99 dB when exact), and mean Oklab distance (delta E OK, x100) to the
original. An image of no more than K colours gets those colours from the k-means
methods; libimagequant and Pillow are left out above K = 256.
kmz's kernels are compiled at install time: there is nothing to warm up.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image
from sklearn.cluster import KMeans

import common

common.use_this_clone()
from kmz.colour import SCALE, srgb_to_oklab  # noqa: E402
from kmz.image import psnr  # noqa: E402
from kmz.quantize import _Histogram, nearest, quantize  # noqa: E402

try:
    from imagequant._libimagequant import ffi, lib
except ImportError:
    lib = None

# libimagequant's and Pillow's palettes hold at most 256 entries.
PALETTE_MAX = 256


def liq(speed):
    """libimagequant at a speed (1 slowest/best .. 10; 4 is its default), for RGB or
    RGBA images. Timed from the RGBA buffer: building that buffer is this harness's
    business, not liq's. The palette has the image's channels."""

    def run(image, k, seed):
        h, w, channels = image.shape
        rgba = np.empty((h, w, 4), dtype=np.uint8)
        rgba[..., :channels] = image
        if channels == 3:
            rgba[..., 3] = 255
        start = time.perf_counter()
        attr = lib.liq_attr_create()
        lib.liq_set_max_colors(attr, k)
        lib.liq_set_speed(attr, speed)
        liq_image = lib.liq_image_create_rgba(attr, ffi.from_buffer(rgba), w, h, 0)
        result = ffi.new("liq_result**")
        if lib.liq_image_quantize(liq_image, attr, result) != lib.LIQ_OK:
            raise RuntimeError("libimagequant failed")
        lib.liq_set_dithering_level(result[0], 0.0)
        indices = np.empty((h, w), dtype=np.uint8)
        lib.liq_write_remapped_image(result[0], liq_image, ffi.from_buffer(indices), h * w)
        entries = lib.liq_get_palette(result[0])
        seconds = time.perf_counter() - start
        palette = np.array([[e.r, e.g, e.b, e.a][:channels] for e in entries.entries[0 : entries.count]],
                           dtype=np.uint8)
        lib.liq_result_destroy(result[0])
        lib.liq_image_destroy(liq_image)
        lib.liq_attr_destroy(attr)
        return palette, indices, seconds

    return run


def pillow(method):
    def run(image, k, seed):
        start = time.perf_counter()
        out = Image.fromarray(image).quantize(k, method=method, dither=Image.Dither.NONE)
        seconds = time.perf_counter() - start
        palette = np.array(out.getpalette()[: 3 * 256], dtype=np.uint8).reshape(-1, 3)
        return palette, np.asarray(out), seconds

    return run


def exact(histogram):
    """(palette, labels) of an image with no more than K distinct colours: those colours,
    which k-means could not give (it wants at least K points)."""
    return histogram.colours, histogram.pixel_labels(np.arange(len(histogram.colours)))


def tutorial(image, k, seed):
    """The textbook approach: k-means on every pixel, centres truncated to bytes."""
    start = time.perf_counter()
    histogram = _Histogram(image.reshape(-1, 3))
    if len(histogram.colours) <= k:
        palette, labels = exact(histogram)
        return palette, labels.reshape(image.shape[:2]), time.perf_counter() - start
    start = time.perf_counter()  # the textbook approach itself counts no colours
    km = KMeans(n_clusters=k, random_state=seed).fit(image.reshape(-1, 3).astype(np.float64))
    seconds = time.perf_counter() - start
    return km.cluster_centers_.astype(np.uint8), km.labels_.reshape(image.shape[:2]), seconds


def weighted_sklearn(image, k, seed):
    """k-means on the distinct colours weighted by their counts, centres rounded."""
    start = time.perf_counter()
    histogram = _Histogram(image.reshape(-1, 3))
    if len(histogram.colours) <= k:
        palette, labels = exact(histogram)
    else:
        km = KMeans(n_clusters=k, n_init=1, random_state=seed)
        km.fit(histogram.colours.astype(np.float64), sample_weight=histogram.counts)
        palette = np.clip(np.rint(km.cluster_centers_), 0, 255).astype(np.uint8)
        labels = histogram.pixel_labels(nearest(histogram.colours.astype(np.float32), palette))
    seconds = time.perf_counter() - start
    return palette, labels.reshape(image.shape[:2]), seconds


def kmz_method(space):
    def run(image, k, seed):
        start = time.perf_counter()
        q = quantize(image.reshape(-1, 3), k, seed=seed, space=space)
        seconds = time.perf_counter() - start
        return q.palette, q.labels.reshape(image.shape[:2]), seconds

    return run


def capped_psnr(image, quantized):
    """PSNR, 99 dB for an exact result (inf otherwise), so that means stay finite."""
    return min(psnr(image, quantized), 99.0)


def delta_e(image, quantized):
    """Mean Oklab distance, x100 (1 is about a just-noticeable difference)."""
    a = srgb_to_oklab(image.reshape(-1, 3)) / SCALE
    b = srgb_to_oklab(quantized.reshape(-1, 3)) / SCALE
    return 100 * float(np.linalg.norm(a - b, axis=1).mean())


def methods(args):
    table = {}
    if not args.no_tutorial:
        table["tutorial: sklearn KMeans on every pixel"] = tutorial
    table["sklearn KMeans on distinct colours, weighted"] = weighted_sklearn
    if lib is not None:
        table["libimagequant speed 1"] = liq(1)
        table["libimagequant default (speed 4)"] = liq(4)
    table["Pillow MEDIANCUT"] = pillow(Image.Quantize.MEDIANCUT)
    table["Pillow FASTOCTREE"] = pillow(Image.Quantize.FASTOCTREE)
    table["**kmz** (rgb)"] = kmz_method("rgb")
    table["**kmz** --space oklab"] = kmz_method("oklab")
    return table


def load(paths):
    images = []
    for path in paths:
        with Image.open(path) as image:
            images.append(np.asarray(image.convert("RGB")))
    return images


def run_set(name, images, k, table):
    rows = {m: {"s": [], "psnr": [], "de": []} for m in table}
    for image in images:
        for method, run in table.items():
            if method.startswith("tutorial") and k > 64 and name != "kodak":
                continue  # minutes per image; the Kodak rows already tell the story
            if k > PALETTE_MAX and method.startswith(("libimagequant", "Pillow")):
                continue
            palette, indices, seconds = run(image, k, 0)
            quantized = palette[indices]
            rows[method]["s"].append(seconds)
            rows[method]["psnr"].append(capped_psnr(image, quantized))
            rows[method]["de"].append(delta_e(image, quantized))
    return rows


def ratio(rows, method, reference):
    if reference not in rows or not rows[method]["s"] or not rows[reference]["s"]:
        return None
    if len(rows[method]["s"]) != len(rows[reference]["s"]):
        return None
    return float(np.median(np.array(rows[method]["s"]) / np.array(rows[reference]["s"])))


def print_quality_table(results):
    liq_default, liq_best = "libimagequant default (speed 4)", "libimagequant speed 1"
    print("| set | K | method | ms per image | x liq default | PSNR dB | vs liq speed 1 | delta E OK |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for (name, k), rows in results.items():
        best = np.mean(rows[liq_best]["psnr"]) if rows.get(liq_best, {}).get("psnr") else None
        for method, r in rows.items():
            if not r["s"]:
                continue
            x = ratio(rows, method, liq_default)
            mean_psnr = np.mean(r["psnr"])
            delta = "" if best is None else f"{mean_psnr - best:+.2f}"
            print(
                f"| {name} | {k} | {method} | {1000 * np.median(r['s']):.0f} | "
                f"{'' if x is None else f'{x:.2f}'} | {mean_psnr:.2f} | {delta} | {np.mean(r['de']):.2f} |"
            )


def upscale(image, megapixels):
    factor = (megapixels * 1e6 / (image.shape[0] * image.shape[1])) ** 0.5
    size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def peak_memory(image, k):
    """Peak resident memory (common.peak_bytes) of a fresh process that loads the image
    and quantizes it: before quantizing, and in all."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "pixels.npy")
        np.save(path, image)
        code = (
            "import sys, numpy as np\n"
            f"sys.path[:0] = [{str(common.ROOT)!r}, {str(common.ROOT / 'bench')!r}]\n"
            "from common import peak_bytes\n"
            "from kmz.quantize import quantize\n"
            f"pixels = np.load({path!r}).reshape(-1, 3)\n"
            "before = peak_bytes()\n"
            f"quantize(pixels, {k})\n"
            "print(before, peak_bytes())\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        before, after = map(int, out.stdout.split())
        return before, after


def print_scale_table(results, source, sizes, k):
    liq_default = "libimagequant default (speed 4)"
    big = {liq_default: liq(4)} if lib is not None else {}
    big.update({"**kmz** (rgb)": kmz_method("rgb"), "Pillow MEDIANCUT": pillow(Image.Quantize.MEDIANCUT)})
    print("\n| pixels | method | ms | x liq default | MP/s | PSNR dB |")
    print("|---|---|---:|---:|---:|---:|")
    for name in ("kodak", "photos"):
        rows = results.get((name, k))
        if not rows:
            continue
        mp = np.median([im.size / 3 / 1e6 for im in load_cache[name]])
        for method in ("**kmz** (rgb)", liq_default):
            if rows.get(method, {}).get("s"):
                seconds = np.median(rows[method]["s"])
                x = ratio(rows, method, liq_default)
                print(
                    f"| {mp:.2f} MP ({name} median) | {method} | {1000 * seconds:.0f} | "
                    f"{'' if x is None else f'{x:.2f}'} | {mp / seconds:.1f} | {np.mean(rows[method]['psnr']):.2f} |"
                )
    for megapixels in sizes:
        image = upscale(source, megapixels)
        mp = image.shape[0] * image.shape[1] / 1e6
        times, quality = {method: [] for method in big}, {}
        for _ in range(SCALE_ROUNDS):  # interleaved, so that load on the machine hits all alike
            for method, run in big.items():
                palette, indices, seconds = run(image, k, 0)
                times[method].append(seconds)
                quality[method] = psnr(image, palette[indices])
        for method in big:
            seconds = np.median(times[method])
            x = f"{seconds / np.median(times[liq_default]):.2f}" if liq_default in times else ""
            print(
                f"| {mp:.1f} MP (upscaled) | {method} | {1000 * seconds:.0f} | {x} | {mp / seconds:.1f} | "
                f"{quality[method]:.2f} |",
                flush=True,
            )
        del image
    if sizes:
        image = upscale(source, max(sizes))
        before, after = peak_memory(image, k)
        print(
            f"\nPeak resident memory quantizing {image.shape[0] * image.shape[1] / 1e6:.1f} MP at K={k}: "
            f"{after / 2**30:.2f} GiB for the whole process ({before / 2**30:.2f} GiB before quantizing, "
            f"the pixels {image.nbytes / 2**30:.2f} GiB)."
        )


load_cache = {}
SCALE_ROUNDS = 3  # the scale rows' times are medians of this many rounds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_corpus(parser)
    common.add_list(parser, "--sets", default=["kodak", "photos"], metavar="SET",
                    help="corpus folders, space-separated (default: kodak photos)")
    common.add_k(parser, [16, 64, 256])
    parser.add_argument("--no-tutorial", action="store_true", help="skip per-pixel k-means (the slowest)")
    common.add_list(parser, "--big", convert=float, nargs="*", default=[12.0, 24.0], metavar="MP",
                    help="megapixel sizes of the scale rows, at K = 256 (default: 12 24; none: --big)")
    args = parser.parse_args()
    paths = {name: common.pngs(args.corpus, name) for name in args.sets}
    if lib is None:
        common.missing("imagequant", "the libimagequant rows are left out", "pip install -e .[bench]")
    table = methods(args)
    results = {}
    for name in args.sets:
        load_cache[name] = load(paths[name])
        for k in args.k:
            results[(name, k)] = run_set(name, load_cache[name], k, table)
            print(f"<!-- done {name} K={k} -->", file=sys.stderr, flush=True)
    print(f"Corpus: {args.corpus}; {os.cpu_count()} cores; no dithering.\n")
    print_quality_table(results)
    sizes = args.big
    source = load_cache["photos"][0] if load_cache.get("photos") else None
    if source is not None:
        print_scale_table(results, source, sizes, 256)


if __name__ == "__main__":
    main()
