"""Index coding benchmark: kmz raw and ctx against lzma, PNG-8 and pngquant.

    python bench/entropy.py [--corpus DIR] [--k 16 64 256] [--sets kodak photos waterloo]

For every set of the corpus and every K, one Markdown table with one row per method:
bits per pixel (all bytes of all files over all pixels), the mean size relative to
pngquant's file for the same image, mean PSNR against the original, and the median
encode/decode speed over the images in MP/s. Then a summary against issue 6's goals.

What is timed: for kmz raw and ctx, the index coding stage alone (indices -> bytes
and back, no quantization; ctx is kmz/entropy.py, raw is the whole format encode/decode);
for lzma, compressing the index bytes; for PNG-8, Pillow writing and reading the
palette image; for pngquant, the whole tool (quantization included) and Pillow reading
its file. Times are CPU seconds (process_time, and the child's rusage for
pngquant), not wall time: the machine is shared, and wall time there measures the
other jobs' load as much as the code. Each is the best of 3 runs (pngquant: 1). PSNR is pooled over a set: 10 log10(255^2 / mean MSE), so that an
image reproduced exactly (MSE 0) counts without making the mean infinite.
kmz's palette and indices come from kmz.encode (whatever quantizer is current), once
per image and K.
"""

import argparse
import io as _io
import lzma
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import kmz  # noqa: E402
from kmz import entropy  # noqa: E402
from kmz import format as fmt  # noqa: E402
from kmz.image import psnr  # noqa: E402
from kmz.io import read_image  # noqa: E402

REPEATS = 3
GOAL_RATIO = 0.8
GOAL_ENCODE, GOAL_DECODE = 10.0, 20.0  # MP/s, the coding stage


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


def measure_kmz(pixels, image):
    """Rows for kmz raw and kmz ctx: (bytes, psnr, encode s, decode s)."""
    quality = psnr(pixels, image.to_array())
    header = image.header
    t_enc, raw = best_time(lambda: fmt.encode(header, image.palette, image.indices))
    t_dec, _ = best_time(lambda: fmt.decode(raw))
    rows = {"kmz raw": (len(raw), quality, t_enc, t_dec)}
    if image.k <= entropy.MAX_K:
        t_enc, payload = best_time(lambda: entropy.encode(image.indices, image.palette))
        t_dec, decoded = best_time(lambda: entropy.decode(payload, image.palette, image.width, image.height))
        if not np.array_equal(decoded, image.indices):
            raise AssertionError("ctx round trip failed")
        rows["kmz ctx"] = (fmt.OVERHEAD + 3 * image.k + len(payload), quality, t_enc, t_dec)
    return rows


def measure_lzma(image, quality):
    """lzma -9 of one byte per index (K <= 256), plus the palette."""
    if image.k > 256:
        return None
    data = image.indices.astype(np.uint8).tobytes()
    t_enc, packed = best_time(lambda: lzma.compress(data, preset=9))
    t_dec, _ = best_time(lambda: lzma.decompress(packed))
    return len(packed) + 3 * image.k, quality, t_enc, t_dec


def measure_png8(image, quality):
    """Pillow's PNG-8 (optimize=True) of the same palette and indices."""
    if image.k > 256:
        return None
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
    output = Path(folder) / f"{path.stem}-{k}.png"
    command = ["pngquant", "--nofs", "--speed", "1", "--force", str(k), str(path), "--output", str(output)]
    # Run once: pngquant at --speed 1 takes seconds, and its speed is not a goal.
    t_enc, _ = best_time(lambda: subprocess.run(command, check=True, capture_output=True), repeats=1)
    data = output.read_bytes()
    t_dec, _ = best_time(lambda: np.asarray(Image.open(_io.BytesIO(data)).convert("RGB")))
    quantized = np.asarray(Image.open(output).convert("RGB"))
    return len(data), psnr(pixels, quantized), t_enc, t_dec


def pooled_psnr(values):
    """PSNR of the mean squared error behind per-image PSNRs (inf = exact)."""
    mse = statistics.mean(0.0 if v == float("inf") else 255.0**2 / 10 ** (v / 10) for v in values)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


METHODS = ["kmz raw", "kmz ctx", "lzma-9 (index bytes)", "PNG-8 (Pillow, optimize)", "pngquant PNG"]


def bench_set(paths, k, folder, cache, have_pngquant):
    """{method: [(path, pixels, bytes, psnr, t_enc, t_dec), ...]} over the images."""
    results = {m: [] for m in METHODS}
    for n, path in enumerate(paths, 1):
        progress(f"{path.parent.name} K={k}: {n}/{len(paths)} {path.name}")
        pixels = read_image(path)
        key = (path, k)
        if key not in cache:
            cache[key] = kmz.encode(pixels, k=k)
        image = cache[key]
        count = image.width * image.height
        rows = measure_kmz(pixels, image)
        quality = rows["kmz raw"][1]
        rows["lzma-9 (index bytes)"] = measure_lzma(image, quality)
        rows["PNG-8 (Pillow, optimize)"] = measure_png8(image, quality)
        if have_pngquant:
            rows["pngquant PNG"] = measure_pngquant(path, pixels, k, folder)
        for method, row in rows.items():
            if row is not None:
                results[method].append((path, count) + row)
    progress("")
    return results


def table(results, k, set_name):
    """One Markdown table; returns (text, {method: mean ratio to pngquant})."""
    reference = {r[0]: r[2] for r in results["pngquant PNG"]}
    lines = [
        f"**{set_name}, K = {k}** ({len(results['kmz raw'])} images)",
        "",
        "| method | bits/pixel | size vs pngquant | PSNR dB | encode MP/s | decode MP/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    ratios = {}
    for method in METHODS:
        rows = results[method]
        if not rows:
            note = "pngquant not installed: skipped" if method == "pngquant PNG" else "K > 256: n/a"
            lines.append(f"| {method} | {note} | | | | |")
            continue
        pixels = sum(r[1] for r in rows)
        bpp = 8 * sum(r[2] for r in rows) / pixels
        if reference:
            ratios[method] = statistics.mean(r[2] / reference[r[0]] for r in rows)
            ratio = f"{ratios[method]:.3f}"
        else:
            ratio = "-"
        quality = pooled_psnr(r[3] for r in rows)
        enc = statistics.median(r[1] / r[4] / 1e6 for r in rows)
        dec = statistics.median(r[1] / r[5] / 1e6 for r in rows)
        lines.append(f"| {method} | {bpp:.3f} | {ratio} | {quality:.2f} | {enc:.1f} | {dec:.1f} |")
    return "\n".join(lines) + "\n", ratios, results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--k", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--sets", nargs="+", default=["kodak", "photos", "waterloo"])
    args = parser.parse_args(argv)
    have_pngquant = shutil.which("pngquant") is not None
    if not have_pngquant:
        print("pngquant is not installed: its rows are skipped (apt-get install pngquant)\n")
    cache = {}
    summary = []
    with tempfile.TemporaryDirectory() as folder:
        for k in args.k:
            per_set = {}
            for set_name in args.sets:
                paths = sorted((args.corpus / set_name).glob("*.png"))
                if not paths:
                    print(f"{args.corpus / set_name}: no images, skipped\n")
                    continue
                text, ratios, results = table(bench_set(paths, k, folder, cache, have_pngquant), k, set_name)
                print(text, flush=True)
                per_set[set_name] = (ratios, results)
            summary.append((k, per_set))
    print(summarize(summary))


def summarize(summary):
    """The goals of issue 6, per K: mean size of kmz ctx vs pngquant, PSNR, speed."""
    lines = [
        "**Goals** (kmz ctx vs pngquant: mean per-image size ratio, goal <= 0.8, at equal or better PSNR; "
        f"coding stage >= {GOAL_ENCODE:.0f} MP/s encode, >= {GOAL_DECODE:.0f} MP/s decode, median)",
        "",
        "| K | photos (kodak + photos) | graphics (waterloo) | PSNR kmz - pngquant dB | ctx encode MP/s | ctx decode MP/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for k, per_set in summary:
        def mean_ratio(names):
            rows = [(r[0], r[2]) for n in names if n in per_set for r in per_set[n][1]["kmz ctx"]]
            ref = {r[0]: r[2] for n in names if n in per_set for r in per_set[n][1]["pngquant PNG"]}
            if not rows or not ref:
                return "-"
            value = statistics.mean(size / ref[p] for p, size in rows)
            return f"{value:.3f} {'met' if value <= GOAL_RATIO else 'NOT met'}"

        ctx = [r for _, (_, results) in per_set.items() for r in results["kmz ctx"]]
        pq = [r for _, (_, results) in per_set.items() for r in results["pngquant PNG"]]
        gap = pooled_psnr(r[3] for r in ctx) - pooled_psnr(r[3] for r in pq) if pq else float("nan")
        enc = statistics.median(r[1] / r[4] / 1e6 for r in ctx)
        dec = statistics.median(r[1] / r[5] / 1e6 for r in ctx)
        lines.append(
            f"| {k} | {mean_ratio(['kodak', 'photos'])} | {mean_ratio(['waterloo'])} | {gap:+.2f} "
            f"| {enc:.1f} {'met' if enc >= GOAL_ENCODE else 'NOT met'} "
            f"| {dec:.1f} {'met' if dec >= GOAL_DECODE else 'NOT met'} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
