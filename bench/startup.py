"""What a person at the command line pays: whole processes, kmz against pngquant.

    python bench/startup.py            # needs kmz installed (the `kmz` command) and pngquant
    python bench/startup.py --runs 9 --corpus DIR

Each row is the median, over --runs runs, of the CPU time (user + system, children
included) of one whole process, the commands run interleaved so that machine load
hits them alike. Rows:
- `import kmz`, and for reference a process that imports numpy and Pillow and reads
  the image (what any Python tool pays before it does anything);
- `kmz encode FILE -k 64` against `pngquant 64 FILE`, on every Kodak image (kodak/ of
  the corpus; --corpus names it; the bundled sample, with a note, when there is none);
- `kmz info` of the file encoded.
The `kmz` command is the one beside this Python (its environment's), else the one on
PATH. The first kmz process of the run is reported separately: with no JIT, the first
run after an install costs what every later run costs.
Large K, in process: quantize() at K = 256, 4096 on Kodak images, and K = 65536 on
70,000 random colours.
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common


def cpu_seconds(command, env=None):
    """CPU time (user + system) of one whole process and its children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def kodak_images(corpus):
    """(the Kodak images, their name in the rows), or the bundled sample after a note."""
    folder = corpus / "kodak"
    images = sorted(folder.glob("*.png")) if folder.is_dir() else []
    if images:
        return images, "Kodak"
    sample = common.ROOT / "samples" / "kodim03.png"
    print(f"no Kodak images in {folder}: timing the bundled sample, {sample.name}\n")
    return [sample], sample.name


def kmz_command():
    """The `kmz` beside this interpreter (its environment's), else the one on PATH."""
    beside = Path(sys.executable).parent / "kmz"
    return str(beside) if os.access(beside, os.X_OK) else shutil.which("kmz")


def large_k(images, label):
    """In-process seconds of quantize() (CPU time): median over the images per K."""
    import numpy as np

    from kmz.io import read_image
    from kmz.quantize import quantize

    rows = []
    for k in (256, 4096):
        times = []
        for path in images:
            pixels = read_image(path).reshape(-1, 3)
            start = time.process_time()
            quantize(pixels, k)
            times.append(time.process_time() - start)
        rows.append((f"quantize, {label}, K = {k}", statistics.median(times)))
    pixels = np.random.default_rng(0).integers(0, 256, (70000, 3), dtype=np.uint8)
    start = time.process_time()
    quantize(pixels, 65536)
    rows.append(("quantize, 70,000 random colours, K = 65536", time.process_time() - start))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per command (default 5)")
    common.add_corpus(parser)
    parser.add_argument("--no-large-k", action="store_true", help="skip the in-process large-K rows")
    args = parser.parse_args()
    if not args.no_large_k:
        common.use_this_clone()  # the in-process rows import kmz
    kmz = kmz_command()
    if kmz is None:
        sys.exit("bench/startup.py: no `kmz` command: pip install -e . first")
    pngquant = common.find_pngquant()
    images, label = kodak_images(args.corpus)
    python = str(Path(kmz).parent / "python")  # kmz's own interpreter
    python = python if os.path.exists(python) else sys.executable

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out.kmz"
        first = cpu_seconds([kmz, "encode", str(images[0]), "-k", "64", "-o", str(out), "--force", "-q"])
        commands = {
            "import kmz": lambda path: [python, "-c", "import kmz"],
            "numpy + Pillow + read the PNG (floor)": lambda path: [
                python, "-c", f"import numpy, PIL.Image; numpy.asarray(PIL.Image.open({str(path)!r}))"],
            "kmz encode FILE -k 64": lambda path: [kmz, "encode", str(path), "-k", "64", "-o", str(out), "--force", "-q"],
            "kmz info FILE.kmz": lambda path: [kmz, "info", str(out)],
        }
        if pngquant:
            commands["pngquant 64 FILE"] = lambda path: [pngquant, "64", "--force", "--output",
                                                         str(Path(folder) / "out.png"), str(path)]
        times = {name: [] for name in commands}
        ratios = []
        for path in images:
            per_image = {name: [] for name in commands}
            for _ in range(args.runs):
                for name, command in commands.items():
                    per_image[name].append(cpu_seconds(command(path)))
            for name in commands:
                times[name].append(statistics.median(per_image[name]))
            if pngquant:
                ratios.append(statistics.median(per_image["kmz encode FILE -k 64"])
                              / statistics.median(per_image["pngquant 64 FILE"]))

    print(f"Whole processes, CPU seconds: median of {args.runs} runs per image, then median over "
          f"{len(images)} image{'s' * (len(images) != 1)}\n")
    print("| command | CPU s |\n|---|---:|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.3f} |")
    print(f"| first `kmz encode` after the install | {first:.3f} |")
    if ratios:
        print(f"\nkmz encode / pngquant, median per-image ratio: {statistics.median(ratios):.2f} "
              f"(range {min(ratios):.2f}-{max(ratios):.2f})")
    if not args.no_large_k:
        print("\nLarge K, in process, CPU seconds (median over the images)\n")
        print("| case | CPU s |\n|---|---:|")
        rows = large_k(images, label)
        for name, seconds in rows:
            print(f"| {name} | {seconds:.3f} |")
        print(f"\nK = 4096 / K = 256: {rows[1][1] / rows[0][1]:.1f}x")


if __name__ == "__main__":
    main()
