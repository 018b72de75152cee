"""Batch conversion: many files, folders or globs encoded (or decoded) into a mirrored tree.

Three steps, each usable alone:

- plan(): expand the sources into (input, output) tasks. What you name is what you get:
  a file named on the command line (or matched by a glob) is always tried, whatever its
  suffix; a folder is walked recursively, skipping hidden files and folders (names
  starting with "."), the destination folder, and files whose suffix is not one of
  image_suffixes() (encoding) or ".kmz" (decoding). An output that exists is skipped unless
  `force`; two inputs that map to the same output (a.png and a.jpg -> a.kmz) both fail
  rather than one silently winning.
- convert_file(): one file, in a worker. Any exception becomes a failed record, so one bad
  file never stops the rest.
- run(): chunks of tasks (paths, never pixels) on a concurrent.futures-style executor: a
  local process pool, or a Dask cluster. A worker that dies (native crash, OOM kill) costs
  no results: see _LocalBackend and _DaskBackend for how each recovers.

Every finished file is appended to a JSON-lines manifest as soon as its chunk returns.
"""

import contextlib
import functools
import json
import math
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path

from PIL import Image

from . import io
from .errors import KmzError, WriteError
from .image import encode, psnr
from .image import open as open_kmz

MANIFEST_NAME = "kmz-manifest.jsonl"
MAX_CHUNK = 100

# Raster formats worth taking from a folder, kept to those this Pillow can open: Pillow
# also registers suffixes that are stubs or need external programs (.h5, .grib, .eps,
# .mpg), which in a data set folder are not images meant for kmz.
_RASTER_SUFFIXES = {
    ".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".gif", ".bmp", ".dib", ".tif",
    ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".qoi", ".ico", ".avif",
    ".jp2", ".j2k", ".jpx", ".pcx", ".sgi", ".dds", ".psd", ".im", ".xbm",
}  # fmt: skip


@functools.cache
def image_suffixes():
    """The suffixes of files taken from folders when encoding (lower case, with the dot)."""
    return frozenset(
        suffix
        for suffix, name in Image.registered_extensions().items()
        if name in Image.OPEN and suffix in _RASTER_SUFFIXES
    )


_GLOB_MAGIC = re.compile(r"[*?[]")


@dataclass(frozen=True)
class Job:
    """What to do with each file: encode with k and seed, or decode to PNG."""

    decode: bool = False
    k: int = 64
    seed: int = 0


@dataclass(frozen=True)
class Task:
    source: Path
    target: Path


@dataclass
class Plan:
    tasks: list  # Task: to convert
    skipped: list  # Task: the output exists (and force was not given)
    failed: list  # manifest records of inputs refused before any work
    ignored: int = 0  # files in walked folders that are not inputs (suffix, hidden)


@dataclass
class Summary:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    ignored: int = 0
    bytes: int = 0
    seconds: float = 0.0
    manifest: Path = None
    failures: list = field(default_factory=list)  # the failed records

    def __str__(self):
        rate = self.done / self.seconds if self.seconds else 0.0
        ignored = f", {self.ignored:,} ignored (not images)" if self.ignored else ""
        return (
            f"kmz batch: {self.done:,} done, {self.skipped:,} skipped (output exists), "
            f"{self.failed:,} failed{ignored}; {self.bytes:,} bytes written in "
            f"{self.seconds:.1f} s ({rate:.1f} files/s); manifest {self.manifest}"
        )


# Planning --------------------------------------------------------------------------


def _walk(folder, root, suffixes, exclude):
    """Yield (file, root) under folder, and count what is left out; sorted, so runs agree."""
    ignored = 0
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".") and os.path.realpath(os.path.join(dirpath, d)) not in exclude
        )  # fmt: skip
        for name in sorted(filenames):
            if name.startswith(".") or Path(name).suffix.lower() not in suffixes:
                ignored += 1
            else:
                found.append((Path(dirpath, name), root))
    return found, ignored


def _expand(source, suffixes, exclude):
    """(file, root) pairs for one SRC; the output mirrors each file's path below its root.
    A path that exists is taken literally even if it has glob characters (photo[1].png)."""
    path = Path(source)
    if path.is_dir():
        return _walk(path, path, suffixes, exclude)
    if path.exists():
        return [(path, path.parent)], 0
    if not _GLOB_MAGIC.search(str(source)):
        raise KmzError(f"{path}: no such file or folder")
    fixed = next(i for i, part in enumerate(path.parts) if _GLOB_MAGIC.search(part))
    root = Path(*path.parts[:fixed])
    matches = sorted(glob(str(source), recursive=True))
    if not matches:
        raise KmzError(f"{source}: no file or folder matches")
    found, ignored = [], 0
    for match in map(Path, matches):
        if match.is_dir():
            files, skipped = _walk(match, root, suffixes, exclude)
            found += files
            ignored += skipped
        else:
            found.append((match, root))
    return found, ignored


def _record(task, status, error=None, **fields):
    record = {"path": str(task.source), "output": str(task.target), "status": status}
    record.update({"bytes": None, "k": None, "psnr": None, "seconds": None}, **fields)
    record["error"] = error
    return record


def plan(sources, destination, decode=False, force=False):
    """Expand files, folders and globs into a Plan of (input, output) tasks below destination.

    Raises KmzError when a source does not exist or a glob matches nothing (before any
    work: a typo should not cost a run), or when destination is an existing file."""
    destination = Path(destination)
    if destination.exists() and not destination.is_dir():
        raise KmzError(f"{destination}: exists and is not a folder")
    suffixes = {".kmz"} if decode else image_suffixes()
    new_suffix = ".png" if decode else ".kmz"
    exclude = {os.path.realpath(destination)}
    seen, by_target, ignored = set(), {}, 0
    for source in sources:
        found, skipped = _expand(source, suffixes, exclude)
        ignored += skipped
        for path, root in found:
            target = (destination / path.relative_to(root)).with_suffix(new_suffix)
            if (path, target) not in seen:
                seen.add((path, target))
                by_target.setdefault(target, []).append(Task(path, target))
    result = Plan([], [], [], ignored)
    for target, tasks in by_target.items():
        if len(tasks) > 1:
            names = ", ".join(str(task.source) for task in tasks)
            for task in tasks:
                result.failed.append(_record(task, "failed", f"output collision: {names} all map to {target}"))
            continue
        task = tasks[0]
        if not target.exists():
            result.tasks.append(task)
        elif os.path.samefile(target, task.source):
            result.failed.append(_record(task, "failed", f"{target}: refusing to overwrite the input"))
        elif force:
            result.tasks.append(task)
        else:
            result.skipped.append(task)
    return result


# Work, in a worker process --------------------------------------------------------


def convert_file(source, target, job):
    """Encode (or decode) one file to target, atomically; returns bytes, k and psnr.

    psnr is None when the encoding is lossless (or when decoding)."""
    io.make_folder(Path(target).parent)
    if job.decode:
        image = open_kmz(source)
        image.save(target)
        return {"bytes": os.path.getsize(target), "k": image.k, "psnr": None}
    pixels, _ = io.open_image(source)
    image = encode(pixels, k=job.k, seed=job.seed)
    image.save(target)
    quality = psnr(pixels, image.to_array())
    return {"bytes": os.path.getsize(target), "k": image.k, "psnr": None if math.isinf(quality) else round(quality, 3)}


def _convert_one(convert, source, target, job):
    """Result fields of one file; whatever goes wrong is this file's failure only. The
    error names the file (format errors, for one, do not)."""
    start = time.perf_counter()
    try:
        result, status, error = convert(source, target, job), "done", None
    except Exception as e:  # noqa: BLE001 - a bug or MemoryError on one file stops only that file
        result, status = {}, "failed"
        if isinstance(e, KmzError):
            error = str(e)
        elif isinstance(e, OSError):  # e.g. the output folder cannot be made
            error = f"{e.filename or source}: {e.strerror or e}"
        else:
            error = f"{type(e).__name__}: {e}"
        if not error.startswith(str(source)):
            error = f"{source}: {error}"
    return dict(result, status=status, seconds=round(time.perf_counter() - start, 4), error=error)


@contextlib.contextmanager
def _one_thread():
    """Pin BLAS/OpenMP to one thread: there is one worker per core already."""
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    with threadpool_limits(limits=1):
        yield


def convert_chunk(tasks, job, convert=convert_file):
    """The task a worker runs: [(source, target), ...] paths -> a result dict per file."""
    with _one_thread():
        return [_convert_one(convert, source, target, job) for source, target in tasks]


def _stream_chunk(sender, tasks, job, convert):
    with _one_thread():
        for source, target in tasks:
            sender.send(_convert_one(convert, source, target, job))
    sender.close()


def _death(exitcode):
    if exitcode is not None and exitcode < 0:
        return f"signal {-exitcode}" + (f", {signal.Signals(-exitcode).name}" if -exitcode in signal.valid_signals() else "")
    return f"exit status {exitcode}"


def isolate_chunk(tasks, job, convert=convert_file, attempts=2, stop=None):
    """Run a chunk whose worker died, in a process of its own that reports each file as it
    finishes, so a death points at exactly one file. That file is retried (an OOM kill may
    have been the neighbours' fault) and after `attempts` deaths recorded as failed; the
    files after it go on in a fresh process. Setting the `stop` event ends it early."""
    context = multiprocessing.get_context()
    results, deaths = [], 0
    while len(results) < len(tasks):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_stream_chunk, args=(sender, tasks[len(results) :], job, convert), daemon=True)
        process.start()
        sender.close()
        try:
            while True:
                if stop is not None and stop.is_set():
                    process.kill()
                    process.join()
                    return results
                if receiver.poll(0.2):
                    results.append(receiver.recv())
                    deaths = 0
        except EOFError:
            pass
        receiver.close()
        process.join()
        if len(results) < len(tasks):
            deaths += 1
            if deaths >= attempts:
                how = _death(process.exitcode)
                error = f"worker died ({how}) while processing {tasks[len(results)][0]}, {deaths} times"
                results.append({"status": "failed", "seconds": None, "error": error})
                deaths = 0
    return results


# Executors -------------------------------------------------------------------------


def _completed(value):
    future = Future()
    future.set_result(value)
    return future


def default_workers():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class _LocalBackend:
    """A process pool of `workers` processes. When a worker dies the pool breaks and fails
    every chunk it held with BrokenProcessPool: the pool is rebuilt for new chunks, and each
    chunk it held is retried by isolate_chunk, in threads so they run side by side."""

    def __init__(self, workers, attempts):
        self.slots = workers
        self.attempts = attempts
        self.pool = ProcessPoolExecutor(workers)
        self.isolator = ThreadPoolExecutor(workers, thread_name_prefix="kmz-isolate")
        self.stop = threading.Event()
        self.broken = False

    def submit(self, tasks, job, convert):
        if self.broken:
            self.pool.shutdown(wait=True)
            self.pool = ProcessPoolExecutor(self.slots)
            self.broken = False
        return self.pool.submit(convert_chunk, tasks, job, convert)

    def retry(self, tasks, error, job, convert):
        if not isinstance(error, BrokenProcessPool):
            return None
        self.broken = True
        return [(self.isolator.submit(isolate_chunk, tasks, job, convert, self.attempts, self.stop), tasks)]

    def close(self, cancel=False):
        if cancel:  # interrupted: stop the files in progress too, not only the queued ones
            self.stop.set()
            # ProcessPoolExecutor has no public way to end running tasks before Python
            # 3.14 (terminate_workers); without it, exit waits for every running chunk.
            for process in list((getattr(self.pool, "_processes", None) or {}).values()):
                process.kill()
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)
        self.isolator.shutdown(wait=not cancel, cancel_futures=cancel)


class _DaskBackend:
    """An existing Dask cluster, through its concurrent.futures executor. Dask reruns a task
    whose worker died, up to the scheduler's `distributed.scheduler.allowed-failures`, then
    fails it with KilledWorker: such a chunk is split into single files, and a single file
    that still kills workers is recorded as failed. Workers need kmz installed and the
    paths visible (a shared file system): tasks carry absolute paths."""

    def __init__(self, address):
        try:
            from distributed import Client
        except ImportError:
            raise KmzError("--scheduler needs Dask: pip install 'kmz[dask]'") from None
        try:
            self.client = Client(address, timeout="10s")
        except (OSError, TimeoutError, ValueError) as e:
            raise KmzError(f"cannot connect to the Dask scheduler at {address}: {e}") from None
        self.executor = self.client.get_executor(pure=False)
        self.slots = max(1, sum(self.client.nthreads().values()))

    def submit(self, tasks, job, convert):
        return self.executor.submit(convert_chunk, tasks, job, convert)

    def retry(self, tasks, error, job, convert):
        from distributed import KilledWorker

        if not isinstance(error, KilledWorker):
            return None
        if len(tasks) > 1:
            return [(self.submit([task], job, convert), [task]) for task in tasks]
        message = f"worker died while processing {tasks[0][0]}, every time Dask retried it ({error})"
        return [(_completed([{"status": "failed", "seconds": None, "error": message}]), tasks)]

    def close(self, cancel=False):
        self.executor.shutdown(wait=not cancel)
        self.client.close()


# The run ---------------------------------------------------------------------------


def run(
    plan,
    job,
    *,
    manifest,
    workers=None,
    scheduler=None,
    chunk_size=None,
    progress=False,
    on_record=None,
    convert=convert_file,
    attempts=2,
):
    """Convert every task of `plan` and append a record per file to the JSON-lines
    `manifest`. Returns a Summary; never raises for a bad file (it is in summary.failures).

    workers: local processes (default: one per core); scheduler: a Dask scheduler address
    instead. chunk_size: files per task (default: enough chunks to balance, at most
    MAX_CHUNK). convert(source, target, job) -> {bytes, k, psnr} does one file (tests pass
    their own); attempts: deaths in isolation before a file is failed (local pool)."""
    from tqdm import tqdm

    start = time.perf_counter()
    summary = Summary(skipped=len(plan.skipped), ignored=plan.ignored, manifest=Path(manifest))
    try:
        Path(manifest).parent.mkdir(parents=True, exist_ok=True)
        log = open(manifest, "a", encoding="utf-8")
    except OSError as e:
        raise WriteError(f"{manifest}: cannot write the manifest ({e.strerror or e})") from None
    with log, tqdm(
        total=len(plan.tasks), unit="file", disable=not progress, dynamic_ncols=True, file=sys.stderr
    ) as bar:

        def record(records):
            log.write("".join(json.dumps(r) + "\n" for r in records))
            log.flush()
            for r in records:
                if r["status"] == "done":
                    summary.done += 1
                    summary.bytes += r["bytes"]
                else:
                    summary.failed += 1
                    summary.failures.append(r)
                if on_record:
                    on_record(r)

        record(plan.failed)
        if plan.tasks:
            backend = _DaskBackend(scheduler) if scheduler else _LocalBackend(workers or default_workers(), attempts)
            try:
                _drive(backend, plan.tasks, job, convert, chunk_size, record, bar)
            except BaseException:
                backend.close(cancel=True)
                raise
            backend.close()
    summary.seconds = time.perf_counter() - start
    return summary


def _source_bytes(task):
    try:
        return os.stat(task.source).st_size
    except OSError:  # gone since the plan: the worker will report it
        return 0


def _drive(backend, tasks, job, convert, chunk_size, record, bar):
    """Keep about two chunks per slot in flight (bounded memory for millions of files, and
    few chunks to redo when a worker dies); record each chunk as it returns."""
    size = chunk_size or max(1, min(MAX_CHUNK, math.ceil(len(tasks) / (4 * backend.slots))))
    # Largest files first (longest processing time first): the run then ends on small
    # files, instead of one worker finishing a big one while the others wait.
    tasks = sorted(tasks, key=_source_bytes, reverse=True)
    # Workers get absolute paths (their working folder may differ); the manifest keeps
    # the paths as the user gave them.
    by_path = {}
    queue = deque()
    for i in range(0, len(tasks), size):
        chunk = tasks[i : i + size]
        pairs = [(os.path.abspath(t.source), os.path.abspath(t.target)) for t in chunk]
        by_path.update({pair: t for pair, t in zip(pairs, chunk)})
        queue.append(pairs)
    inflight = {}
    while queue or inflight:
        while queue and len(inflight) < 2 * backend.slots:
            pairs = queue.popleft()
            inflight[backend.submit(pairs, job, convert)] = pairs
        done, _ = wait(inflight, return_when=FIRST_COMPLETED)
        for future in done:
            pairs = inflight.pop(future)
            try:
                results = future.result()
            except Exception as error:
                retries = backend.retry(pairs, error, job, convert)
                if retries is None:
                    raise KmzError(f"batch run stopped: {type(error).__name__}: {error}") from error
                inflight.update(retries)
                continue
            record([_record(by_path[pair], **result) for pair, result in zip(pairs, results)])
            bar.update(len(pairs))
