"""Index coding benchmark: kmz's codings against WebP and JPEG XL lossless, pngquant, PNG-8 and lzma.

    pip install -e .[bench]   # imagecodecs, for the WebP-LL and JXL-LL rows
    python bench/entropy.py [--corpus DIR] [-k 16 64 256] [--sets photos-all screenshots-all] [--cache FILE]

Sets: a corpus folder (kodak, photos, screens, waterloo, ...), all of it, or one of the
two sets of issue 14, the default: "photos-all", the corpus's kodak/ and photos/, and
"screenshots-all", its screens/ and waterloo's graphics (clegg, frymire, serrano,
circles, text). Images keep their transparency, as kmz does.

For every set and K, one Markdown table with one row per method: bits per pixel (all
bytes of all files over all pixels); the mean per-image size relative to pngquant's
file, and to the smaller of WebP-LL's and JXL-LL's for the same image ("best lossless"),
with the worst image's ratio to that; PSNR against the original, pooled over the set
(10 log10(255^2 / mean MSE), so an image reproduced exactly counts without making the
mean infinite; composited over black and white for RGBA, as kmz.image.psnr); and the
median encode/decode speed over the images in MP/s. Then summaries against issue 6's
goals (kmz ctx against pngquant) and issue 14's (the best coding other than raw against
best lossless).

The methods: "kmz <coding>", one row for every coding in kmz.format.CODINGS, is the
whole .kmz file through kmz.format.encode and decode with that coding in the header
(a coding that does not take the K is n/a); "WebP-LL m6" (libwebp lossless, method 6,
quality 100) and "JXL-LL e9" (libjxl lossless, effort 9, bare codestream) code kmz's
decoded pixels, palette[indices], and must decode back to them exactly; lzma -9 codes
one byte per index, plus the palette; PNG-8 is Pillow's (optimize=True) of kmz's
palette and indices; pngquant (--nofs --speed 1, same K) quantizes the original itself.
kmz's palette and indices come from kmz.encode (whatever quantizer is current), once per
image and K. Without imagecodecs or pngquant, their rows are left out (said on stderr).

What is timed: for kmz, the coding stage (palette and indices to the file and back, no
quantization); for WebP-LL and JXL-LL, coding the pixel array and decoding it, each
with one thread; for lzma, compressing and decompressing the index bytes; for PNG-8,
Pillow writing and reading the palette image; for pngquant, the whole tool
(quantization included) and Pillow reading its file. Times are CPU seconds
(process_time, and the child's rusage for pngquant), not wall time: the machine is
shared, and wall time there measures the other jobs' load as much as the code. Each is
the best of 3 runs, except one run for the encoders that take seconds per image and
whose speed is no goal: pngquant, WebP-LL and JXL-LL.

--cache FILE keeps WebP-LL's and JXL-LL's figures (bytes and CPU seconds) in a JSON
file, keyed by the library's version and a hash of the pixels, and reuses them when the
same pixels come again; keep it outside the repository. The times it gives back are
those of the run that measured them.
"""

import argparse
import dataclasses
import hashlib
import io as _io
import json
import lzma
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import namedtuple
from pathlib import Path

import numpy as np
from PIL import Image

import common

common.use_this_clone()
import kmz  # noqa: E402
from kmz import format as fmt  # noqa: E402
from kmz.image import psnr  # noqa: E402
from kmz.io import open_image  # noqa: E402

try:
    import imagecodecs
except ImportError:
    imagecodecs = None

REPEATS = 3
# The sets of issue 14: corpus folder -> the stems taken from it (None: all). Their
# names are no folder's, so that every folder can be chosen alone too.
SETS = {
    "photos-all": {"kodak": None, "photos": None},
    "screenshots-all": {"screens": None, "waterloo": ("clegg", "frymire", "serrano", "circles", "text")},
}
ISSUE6_RATIO = 0.8  # kmz ctx vs pngquant, mean per image
ISSUE6_ENCODE, ISSUE6_DECODE = 10.0, 20.0  # MP/s, the coding stage
ISSUE14_MEAN, ISSUE14_WORST = 0.85, 1.0  # vs best lossless, mean and worst per image
ISSUE14_SPEED = 5.0  # MP/s, the coding stage, encode and decode

KMZ_ROWS = {f"kmz {name}": number for number, name in fmt.CODINGS.items()}
WEBP, JXL = "WebP-LL m6", "JXL-LL e9"
LZMA, PNG8, PNGQUANT = "lzma-9 (index bytes)", "PNG-8 (Pillow, optimize)", "pngquant PNG"

# One image's figures for one method.
Row = namedtuple("Row", "path pixels bytes psnr encode decode")


def cpu_seconds():
    """CPU time of this process and its finished children (pngquant)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def best_time(run, repeats=REPEATS):
    """(best CPU seconds of `repeats` runs, the last run's result)."""
    best = float("inf")
    for _ in range(repeats):
        start = cpu_seconds()
        result = run()
        best = min(best, cpu_seconds() - start)
    return best, result


def progress(text):
    if sys.stderr.isatty():
        print(f"\r\033[K{text}", end="", file=sys.stderr, flush=True)


def lossless_coders():
    """{row: (version, encode(pixels), decode(data, channels))} for the WebP-LL and
    JXL-LL rows, each coder on one thread; empty without imagecodecs."""
    if imagecodecs is None:
        return {}
    return {
        WEBP: (
            imagecodecs.webp_version(),
            lambda pixels: imagecodecs.webp_encode(pixels, level=100, lossless=True, method=6, numthreads=1),
            # libwebp drops an alpha channel that is 255 everywhere: ask for the channels given.
            lambda data, channels: imagecodecs.webp_decode(data, hasalpha=channels == 4),
        ),
        JXL: (
            imagecodecs.jpegxl_version(),
            lambda pixels: imagecodecs.jpegxl_encode(
                pixels, lossless=True, effort=9, usecontainer=False, numthreads=1
            ),
            lambda data, channels: imagecodecs.jpegxl_decode(data, numthreads=1),
        ),
    }


LOSSLESS = lossless_coders()


def measure_kmz(number, image, quality):
    """The whole file with coding `number`: (bytes, psnr, encode s, decode s), or why
    the coding does not apply."""
    try:
        header = dataclasses.replace(image.header, coding=number)
    except ValueError as error:
        return f"n/a: {error}"
    t_enc, data = best_time(lambda: fmt.encode(header, image.palette, image.indices))
    t_dec, (_, palette, indices) = best_time(lambda: fmt.decode(data))
    # Pixels, not indices: mix stores the palette in an order of its own.
    if not np.array_equal(palette[indices], image.palette[image.indices]):
        raise AssertionError(f"coding {fmt.CODINGS[number]}: round trip failed")
    return len(data), quality, t_enc, t_dec


def measure_lossless(name, coder, image, quality, cache):
    """A lossless coder on kmz's decoded pixels, from `cache` when it has them."""
    version, encode, decode = coder
    pixels = np.ascontiguousarray(image.to_array())
    digest = hashlib.sha256(repr(pixels.shape).encode() + pixels.tobytes()).hexdigest()
    key = f"{name} {version} {digest}"
    if key not in cache:
        t_enc, data = best_time(lambda: encode(pixels), repeats=1)
        t_dec, decoded = best_time(lambda: decode(data, image.channels))
        if not np.array_equal(decoded, pixels):
            raise AssertionError(f"{name} did not give back the pixels it coded")
        cache[key] = [len(data), t_enc, t_dec]
    size, t_enc, t_dec = cache[key]
    return size, quality, t_enc, t_dec


def measure_lzma(image, quality):
    """lzma -9 of one byte per index (K <= 256), plus the palette."""
    if image.k > 256:
        return "K > 256: n/a"
    data = image.indices.astype(np.uint8).tobytes()
    t_enc, packed = best_time(lambda: lzma.compress(data, preset=9))
    t_dec, _ = best_time(lambda: lzma.decompress(packed))
    return len(packed) + image.palette.size, quality, t_enc, t_dec


def measure_png8(image, quality):
    """Pillow's PNG-8 (optimize=True) of the same palette and indices."""
    if image.k > 256:
        return "K > 256: n/a"
    pil = image.to_pil()

    def write():
        buffer = _io.BytesIO()
        pil.save(buffer, format="PNG", optimize=True)
        return buffer.getvalue()

    t_enc, data = best_time(write)
    t_dec, _ = best_time(lambda: np.asarray(Image.open(_io.BytesIO(data)).convert("P")))
    return len(data), quality, t_enc, t_dec


def measure_pngquant(path, pixels, k, folder):
    """pngquant --nofs --speed 1 at the same K; its PSNR against the original."""
    if k > 256:
        return "K > 256: n/a"
    output = Path(folder) / f"{path.stem}-{k}.png"
    command = ["pngquant", "--nofs", "--speed", "1", "--force", str(k), str(path), "--output", str(output)]
    t_enc, _ = best_time(lambda: subprocess.run(command, check=True, capture_output=True), repeats=1)
    data = output.read_bytes()
    mode = "RGBA" if pixels.shape[-1] == 4 else "RGB"
    t_dec, quantized = best_time(lambda: np.asarray(Image.open(_io.BytesIO(data)).convert(mode)))
    return len(data), psnr(pixels, quantized), t_enc, t_dec


def set_paths(corpus, name):
    """The images of a set: one of SETS, or else a corpus folder; stops when a folder has none."""
    folders = SETS.get(name, {name: None})
    return [path for folder, stems in folders.items() for path in common.pngs(corpus, folder)
            if stems is None or path.stem in stems]


def bench_set(paths, k, methods, folder, cache):
    """({method: [Row, ...]}, {method: why it has no rows}) over the images."""
    results, notes = {m: [] for m in methods}, {}
    for n, path in enumerate(paths, 1):
        progress(f"K={k}: {n}/{len(paths)} {path.parent.name}/{path.name}")
        pixels = open_image(path)[0]
        image = kmz.encode(pixels, k=k)
        quality = psnr(pixels, image.to_array())
        rows = {name: measure_kmz(number, image, quality) for name, number in KMZ_ROWS.items()}
        rows |= {name: measure_lossless(name, coder, image, quality, cache) for name, coder in LOSSLESS.items()}
        rows[LZMA] = measure_lzma(image, quality)
        rows[PNG8] = measure_png8(image, quality)
        if PNGQUANT in methods:
            rows[PNGQUANT] = measure_pngquant(path, pixels, k, folder)
        for method, row in rows.items():
            if isinstance(row, str):
                notes[method] = row
            else:
                results[method].append(Row(path, image.width * image.height, *row))
    progress("")
    return results, notes


def best_lossless(results):
    """{path: bytes of the smaller of WebP-LL's and JXL-LL's file}; empty without them."""
    best = {}
    for method in (WEBP, JXL):
        for r in results.get(method, []):
            best[r.path] = min(best.get(r.path, r.bytes), r.bytes)
    return best


def speed(rows, seconds):
    """Median MP/s over the images, from each row's CPU `seconds` (a timer that read 0
    counts as a nanosecond)."""
    return statistics.median(r.pixels / max(seconds(r), 1e-9) / 1e6 for r in rows)


def mps(value):
    """A speed for the tables: one decimal, two below 1 MP/s (WebP-LL m6 encodes about
    a tenth of a megapixel per second)."""
    return f"{value:.1f}" if value >= 1 else f"{value:.2f}"


def ratios(rows, reference):
    """[(size / reference size, path)] for the images `reference` has."""
    return [(r.bytes / reference[r.path], r.path) for r in rows if r.path in reference]


def pooled_psnr(values):
    """PSNR of the mean squared error behind per-image PSNRs (inf = exact)."""
    mse = statistics.mean(0.0 if v == float("inf") else 255.0**2 / 10 ** (v / 10) for v in values)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def table(set_name, k, results, notes):
    """One Markdown table of a set at one K."""
    pngquant = {r.path: r.bytes for r in results.get(PNGQUANT, [])}
    lossless = best_lossless(results)
    count = len({r.path for rows in results.values() for r in rows})
    lines = [
        f"**{set_name}, K = {k}** ({count} images)",
        "",
        "| method | bits/pixel | size vs pngquant | vs best lossless | worst vs best lossless "
        "| PSNR dB | encode MP/s | decode MP/s |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for method, rows in results.items():
        if not rows:
            lines.append(f"| {method} | {notes[method]} | | | | | | |")
            continue
        bpp = 8 * sum(r.bytes for r in rows) / sum(r.pixels for r in rows)
        vs_pngquant = ratios(rows, pngquant)
        vs_lossless = ratios(rows, lossless)
        mean_pngquant = f"{statistics.mean(x for x, _ in vs_pngquant):.3f}" if vs_pngquant else "-"
        mean_lossless, worst = "-", "-"
        if vs_lossless:
            mean_lossless = f"{statistics.mean(x for x, _ in vs_lossless):.3f}"
            value, path = max(vs_lossless)
            worst = f"{value:.3f} ({path.stem})"
        lines.append(
            f"| {method} | {bpp:.3f} | {mean_pngquant} | {mean_lossless} | {worst} "
            f"| {pooled_psnr(r.psnr for r in rows):.2f} | {mps(speed(rows, lambda r: r.encode))} "
            f"| {mps(speed(rows, lambda r: r.decode))} |"
        )
    return "\n".join(lines) + "\n"


def met(ok):
    return "met" if ok else "NOT met"


def summarize_issue6(runs, set_names):
    """Issue 6's goals per K: kmz ctx's mean size ratio to pngquant in each set, its
    PSNR against pngquant's pooled over the sets, and its median speed."""
    lines = [
        f"**Issue 6's goals** (kmz ctx vs pngquant: mean per-image size ratio, goal <= {ISSUE6_RATIO}, at equal "
        f"or better PSNR; coding stage >= {ISSUE6_ENCODE:.0f} MP/s encode, >= {ISSUE6_DECODE:.0f} MP/s decode, "
        "median)",
        "",
        f"| K | {' | '.join(set_names)} | PSNR kmz - pngquant dB | ctx encode MP/s | ctx decode MP/s |",
        "|---|" + "---:|" * (len(set_names) + 3),
    ]
    for k in sorted({k for _, k in runs}):
        cells, ctx, pq = [], [], []
        for set_name in set_names:
            results = runs[set_name, k][0]
            pngquant = {r.path: r.bytes for r in results[PNGQUANT]}
            values = ratios(results["kmz ctx"], pngquant)
            mean = statistics.mean(x for x, _ in values) if values else None
            cells.append("-" if mean is None else f"{mean:.3f} {met(mean <= ISSUE6_RATIO)}")
            ctx += results["kmz ctx"]
            pq += results[PNGQUANT]
        if not (ctx and pq):
            lines.append(f"| {k} | {' | '.join(cells)} | - | - | - |")
            continue
        gap = pooled_psnr(r.psnr for r in ctx) - pooled_psnr(r.psnr for r in pq)
        enc, dec = speed(ctx, lambda r: r.encode), speed(ctx, lambda r: r.decode)
        lines.append(
            f"| {k} | {' | '.join(cells)} | {gap:+.2f} | {enc:.1f} {met(enc >= ISSUE6_ENCODE)} "
            f"| {dec:.1f} {met(dec >= ISSUE6_DECODE)} |"
        )
    return "\n".join(lines) + "\n"


def summarize_issue14(runs):
    """Issue 14's goals per set and K, for the coding other than raw with the smallest
    mean ratio to best lossless: that mean, the worst image, and the median speeds."""
    lines = [
        f"**Issue 14's goals** (the best kmz coding other than raw vs the smaller of {WEBP} and {JXL} on the "
        f"same pixels: mean per-image size ratio <= {ISSUE14_MEAN}, no image above {ISSUE14_WORST}; coding stage "
        f">= {ISSUE14_SPEED:.0f} MP/s encode and decode, median)",
        "",
        "| set | K | coding | mean vs best lossless | worst image | encode MP/s | decode MP/s |",
        "|---|---:|---|---:|---|---:|---:|",
    ]
    for (set_name, k), (results, _) in runs.items():
        lossless = best_lossless(results)
        candidates = []
        for method, number in KMZ_ROWS.items():
            values = ratios(results[method], lossless)
            if number != fmt.CODING_RAW and values and len(values) == len(lossless):
                candidates.append((statistics.mean(x for x, _ in values), method, values))
        if not candidates:
            lines.append(f"| {set_name} | {k} | - | | | | |")
            continue
        mean, method, values = min(candidates)
        worst, path = max(values)
        rows = results[method]
        enc, dec = speed(rows, lambda r: r.encode), speed(rows, lambda r: r.decode)
        lines.append(
            f"| {set_name} | {k} | {method} | {mean:.3f} {met(mean <= ISSUE14_MEAN)} "
            f"| {worst:.3f} {path.stem} {met(worst <= ISSUE14_WORST)} "
            f"| {enc:.1f} {met(enc >= ISSUE14_SPEED)} | {dec:.1f} {met(dec >= ISSUE14_SPEED)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_corpus(parser)
    common.add_k(parser, [16, 64, 256])
    common.add_list(parser, "--sets", default=list(SETS), metavar="SET",
                    help=f"space-separated: {' and '.join(SETS)} (issue 14's, the default) or corpus folders")
    parser.add_argument("--cache", type=Path, help="a JSON file keeping WebP-LL's and JXL-LL's figures")
    args = parser.parse_args(argv)
    paths = {set_name: set_paths(args.corpus, set_name) for set_name in args.sets}
    methods = [*KMZ_ROWS, *LOSSLESS, LZMA, PNG8]
    if imagecodecs is None:
        common.missing("imagecodecs", f"the {WEBP} and {JXL} rows are left out", "pip install -e .[bench]")
    if common.find_pngquant():
        methods.append(PNGQUANT)
    cache = json.loads(args.cache.read_text()) if args.cache and args.cache.exists() else {}
    runs = {}
    with tempfile.TemporaryDirectory() as folder:
        for k in args.k:
            for set_name in args.sets:
                runs[set_name, k] = bench_set(paths[set_name], k, methods, folder, cache)
                print(table(set_name, k, *runs[set_name, k]), flush=True)
                if args.cache:
                    args.cache.write_text(json.dumps(cache))
    set_names = list(dict.fromkeys(args.sets))
    if PNGQUANT in methods:
        print(summarize_issue6(runs, set_names))
    if imagecodecs is not None:
        print(summarize_issue14(runs))


if __name__ == "__main__":
    main()
