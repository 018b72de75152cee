"""Batch throughput: files per second for 1 and 2 local workers (and a Dask LocalCluster
of 2 workers when distributed is installed) on the corpus photographs (kodak/ and
photos/: 22 files of 0.4 to 1.1 MP), and the per-file overhead of a batch run on tiny
images against a plain loop in this process. A third table replaces the encoder by a
10 ms sleep: it shows how well the pool overlaps files when CPU is not the limit,
which on a shared machine the first table cannot.

    python bench/batch.py [--corpus DIR] [--rounds 3] [-k 64] [--tiny 200]

The configurations run interleaved, round after round, and medians are quoted: the
machine is shared, so only same-run ratios mean much. Prints Markdown tables.
"""

import argparse
import logging
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from threadpoolctl import threadpool_limits

import common

common.use_this_clone()
from kmz import batch  # noqa: E402


def child_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_run(src, dst, job, **where):
    """(seconds, CPU seconds of the local workers) for one complete batch run, pool start
    and stop included, every file redone. A local pool's workers are reaped when the run
    ends, so their CPU time shows in RUSAGE_CHILDREN; a Dask cluster's does not (None)."""
    plan = batch.plan([src], dst, force=True)
    cpu, start = child_cpu(), time.perf_counter()
    summary = batch.run(plan, job, manifest=dst / batch.MANIFEST_NAME, **where)
    seconds = time.perf_counter() - start
    assert summary.failed == 0 and summary.done == len(plan.tasks), summary
    return seconds, (child_cpu() - cpu if "workers" in where else None)


def plain_loop(src, dst, job):
    """The same files, converted one after another in this process: no pool, no manifest."""
    tasks = batch.plan([src], dst, force=True).tasks
    start = time.perf_counter()
    with threadpool_limits(limits=1):  # as in the workers: one thread each
        for task in tasks:
            batch.convert_file(task.source, task.target, job)
    return time.perf_counter() - start, None


def sleep_convert(source, target, job):
    """A stand-in for convert_file that waits instead of computing (and writes nothing)."""
    time.sleep(0.01)
    return {"bytes": 0, "k": None, "psnr": None}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_corpus(parser)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds, medians quoted (default: 3)")
    parser.add_argument("-k", "--k", type=int, default=64,
                        help="palette size of the encodes (default: 64; one K, as for kmz batch)")
    parser.add_argument("--tiny", type=int, default=200, help="how many 8x8 images (default: 200)")
    args = parser.parse_args()
    images = common.pngs(args.corpus, "kodak") + common.pngs(args.corpus, "photos")
    job = batch.Job(k=args.k)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photos, tiny = tmp / "photos", tmp / "tiny"
        photos.mkdir()
        for path in images:
            shutil.copy(path, photos / f"{path.parent.name}-{path.name}")
        rng = np.random.default_rng(0)
        tiny.mkdir()
        for i in range(args.tiny):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tiny / f"t{i:04d}.png")

        configs = {"1 worker": {"workers": 1}, "2 workers": {"workers": 2}}
        cluster = None
        try:
            import dask
            import distributed

            # The scheduler's and the workers' scratch space and lock files in this run's
            # folder, not left in /tmp (local_directory= would reach the workers only).
            dask.config.set({"temporary-directory": str(tmp / "dask")})
            cluster = distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
            )
            configs["Dask, 2 workers"] = {"scheduler": cluster.scheduler_address}
        except ImportError:
            common.missing("distributed", "no Dask row", "pip install -e .[dask]")

        photo_times = {name: [] for name in configs}
        tiny_times = {name: [] for name in ["in-process loop", *configs]}
        sleep_times = {"1 worker": [], "2 workers": []}
        try:
            for _ in range(args.rounds):
                for name, where in configs.items():
                    photo_times[name].append(timed_run(photos, tmp / "out", job, **where))
                tiny_times["in-process loop"].append(plain_loop(tiny, tmp / "tiny-out", job))
                for name, where in configs.items():
                    tiny_times[name].append(timed_run(tiny, tmp / "tiny-out", job, **where))
                for name in sleep_times:  # a local pool only: Dask workers cannot import __main__
                    sleep_times[name].append(
                        timed_run(tiny, tmp / "tiny-out", job, workers=configs[name]["workers"], convert=sleep_convert)
                    )
        finally:
            if cluster is not None:
                cluster.close()

    n = len(images)
    speed_table(f"Corpus photographs, {n} images (kodak/, photos/), K={args.k}, median of {args.rounds} interleaved rounds:",
                photo_times, n)
    loop = medians(tiny_times["in-process loop"])[0]
    print(f"\n{args.tiny} tiny 8x8 images, K={args.k} (whole run, pool start and stop included):\n")
    print("| run | seconds | files/s | ms per file | overhead vs loop, ms per file |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, runs in tiny_times.items():
        t = medians(runs)[0]
        overhead = "-" if name == "in-process loop" else f"{1000 * (t - loop) / args.tiny:+.2f}"
        print(f"| {name} | {t:.2f} | {args.tiny / t:.0f} | {1000 * t / args.tiny:.2f} | {overhead} |")
    print()
    speed_table(f"The {args.tiny} tiny files, each a 10 ms sleep instead of an encode (the pool's overlap):", sleep_times, args.tiny)


def medians(runs):
    """Median seconds, and the median of the workers' CPU seconds per second ("-" unknown)."""
    t = statistics.median(seconds for seconds, _ in runs)
    busy = [cpu / seconds for seconds, cpu in runs if cpu is not None]
    return t, f"{statistics.median(busy):.2f}" if busy else "-"


def speed_table(title, runs_by_name, files):
    base = medians(runs_by_name["1 worker"])[0]
    print(f"{title}\n")
    print("| run | seconds | files/s | speed-up vs 1 worker | cores busy (worker CPU s / s) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, runs in runs_by_name.items():
        t, busy = medians(runs)
        print(f"| {name} | {t:.2f} | {files / t:.2f} | {base / t:.2f}x | {busy} |")

if __name__ == "__main__":
    main()
