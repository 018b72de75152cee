"""Batch conversion: many files, folders or globs encoded (or decoded) into a mirrored tree.

Three steps, each usable alone:

- plan(): expand the sources into (input, output) tasks. What you name is what you get:
  a file named on the command line (or matched by a glob) is always tried, whatever its
  suffix; a folder is walked recursively, skipping hidden files and folders (names
  starting with "."), the destination folder, and files whose suffix is not one of
  image_suffixes() (encoding) or ".kmz" (decoding). Nothing inside the destination
  folder, nor the manifest, is taken from a glob either. An output that exists is left to
  run() unless `force`; two inputs that map to the same output (a.png and a.jpg ->
  a.kmz) both fail rather than one silently winning.
- convert_file(): one file, in a worker. Any exception becomes a failed record, so one bad
  file never stops the rest.
- run(): chunks of tasks (paths, never pixels) on a concurrent.futures-style executor: a
  local process pool, or a Dask cluster. A worker that dies (native crash, OOM kill) costs
  no results: see _LocalBackend and _DaskBackend for how each recovers.

Every finished file is appended to a JSON-lines manifest as soon as its chunk returns.
A rerun resumes: an output the manifest records as done is skipped, and one it does not
record (written by a run killed before its chunk returned) is checked in a worker and
recorded, so each input ends with one line. A file there that is not exactly what this
run would write is someone else's: it is left alone, and its input fails (--force
replaces it).

Workers die with the batch process, however it ends (see _die_with_parent): a worker
left running after a kill -9 would keep writing outputs that no manifest records.
"""

import contextlib
import ctypes
import functools
import json
import math
import multiprocessing
import os
import re
import signal
import stat
import sys
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path

import numpy as np
from PIL import Image

from . import format as fmt
from . import io
from .errors import KmzError, OutputExistsError, WriteError
from .image import encode
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
    """What to do with each file: decode to PNG, or encode with kmz.encode's options
    (k None is encode's default). max_pixels is fixed when the Job is made: workers (a
    Dask cluster's among them) apply the caller's kmz.MAX_IMAGE_PIXELS, not their own."""

    decode: bool = False
    k: int = None
    seed: int = 0
    coding: str = "raw"
    space: str = "rgb"
    dither: bool = False
    psnr: float = None
    max_bytes: int = None
    strict: bool = False
    frame: int = None
    background: str = io.DEFAULT_BACKGROUND
    max_pixels: int = fmt.PACKAGE_LIMIT

    def __post_init__(self):
        if self.max_pixels is fmt.PACKAGE_LIMIT:
            object.__setattr__(self, "max_pixels", sys.modules[__package__].MAX_IMAGE_PIXELS)


@dataclass(frozen=True)
class Task:
    source: Path
    target: Path
    found: bool = False  # the output exists, unrecorded: check that it is this run's


@dataclass
class Plan:
    tasks: list  # Task: to convert
    skipped: list  # Task: the output exists (and force was not given); see run()
    failed: list  # manifest records of inputs refused before any work
    ignored: int = 0  # files in walked folders that are not inputs (suffix, hidden)


@dataclass
class Summary:
    done: int = 0
    found: int = 0  # outputs an earlier run wrote but did not record, checked and recorded
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
        found = f", {self.found:,} found already written (checked)" if self.found else ""
        return (
            f"kmz batch: {self.done:,} done{found}, {self.skipped:,} skipped (output exists), "
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


def _inside(path, exclude):
    """Whether path is one of the excluded real paths or lies below one."""
    real = Path(os.path.realpath(path))
    return any(str(place) in exclude for place in (real, *real.parents))


def _expand(source, suffixes, exclude):
    """(file, root) pairs for one SRC; the output mirrors each file's path below its root.
    A path that exists is taken literally even if it has glob characters (photo[1].png);
    a glob's matches leave out the excluded paths (a rerun must not take its own outputs
    and manifest for inputs)."""
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
        if _inside(match, exclude):
            continue
        if match.is_dir():
            files, skipped = _walk(match, root, suffixes, exclude)
            found += files
            ignored += skipped
        else:
            found.append((match, root))
    return found, ignored


def _record(task, status, error=None, **fields):
    record = {"path": str(task.source), "output": str(task.target), "status": status}
    record.update({"bytes": None, "k": None, "psnr": None, "notes": [], "seconds": None, "found": False}, **fields)
    record["error"] = error
    return record


def plan(sources, destination, decode=False, force=False, manifest=None):
    """Expand files, folders and globs into a Plan of (input, output) tasks below destination.

    Raises KmzError when a source does not exist or a glob matches nothing (before any
    work: a typo should not cost a run), or when destination is an existing file. Globs
    and folders never yield the manifest (default: the one in destination) as an input."""
    destination = Path(destination)
    if destination.exists() and not destination.is_dir():
        raise KmzError(f"{destination}: exists and is not a folder")
    suffixes = {".kmz"} if decode else image_suffixes()
    new_suffix = ".png" if decode else ".kmz"
    exclude = {os.path.realpath(destination), os.path.realpath(manifest or destination / MANIFEST_NAME)}
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
            for task in tasks:
                others = ", ".join(str(other.source) for other in tasks if other is not task)
                error = f"{task.source}: output collision: {others} also map{'s' * (len(tasks) == 2)} to {target}"
                result.failed.append(_record(task, "failed", error))
            continue
        task = tasks[0]
        if not target.exists():
            result.tasks.append(task)
        elif not target.is_file():  # a folder, a FIFO, a device: never replaced, never read
            result.failed.append(_record(task, "failed", f"{target}: exists and is not a regular file"))
        elif os.path.samefile(target, task.source):
            result.failed.append(_record(task, "failed", f"{target}: refusing to overwrite the input"))
        elif force:
            result.tasks.append(task)
        else:
            result.skipped.append(task)
    return result


# Work, in a worker process --------------------------------------------------------


def _quality(decibels):
    """PSNR for the manifest: None when lossless."""
    return None if math.isinf(decibels) else round(decibels, 3)


def convert_file(source, target, job):
    """Encode (or decode) one file to target, atomically; returns bytes, k, psnr and notes.

    psnr is None when the encoding is lossless (or when decoding); notes say what was done
    to an odd input (as kmz encode prints them), and how a quality target was met."""
    io.make_folder(Path(target).parent)
    if job.decode:
        image = open_kmz(source, max_pixels=job.max_pixels)
        image.save(target)
        return {"bytes": os.path.getsize(target), "k": image.k, "psnr": None, "notes": []}
    image, notes = _encoded(source, job)
    image.save(target)
    return {"bytes": os.path.getsize(target), "k": image.k, "psnr": _quality(image.psnr), "notes": notes}


def _encoded(source, job):
    """The KmzImage job makes of source, and the notes kmz encode would print."""
    pixels, notes = io.open_image(source, job.frame, job.background, job.max_pixels)
    image = encode(pixels, k=job.k, seed=job.seed, psnr=job.psnr, max_bytes=job.max_bytes, strict=job.strict,
                   coding=job.coding, space=job.space, dither=job.dither, max_pixels=None)  # checked by open_image
    if image.target:
        notes.append(image.target.describe())
    return image, notes


def check_written(source, target, job):
    """The result fields for an output found already written but not recorded (by a run
    killed before its chunk returned). It is trusted only if it is exactly what this run
    would write: the same bytes (encoding is deterministic), or when decoding the same
    pixels. Anything else at target is not this run's to replace: OutputExistsError."""
    if job.decode:
        expected = open_kmz(source, max_pixels=job.max_pixels)
        if _same_pixels(target, expected, job.max_pixels):
            return {"bytes": os.path.getsize(target), "k": expected.k, "psnr": None, "notes": [], "found": True}
    else:
        image, notes = _encoded(source, job)
        data = image.tobytes()
        if _same_bytes(target, data):
            return {"bytes": len(data), "k": image.k, "psnr": _quality(image.psnr), "notes": notes, "found": True}
    raise OutputExistsError(f"{target}: exists and is not what this run would write (use --force to replace it)")


def _same_bytes(path, data):
    try:
        return os.path.getsize(path) == len(data) and Path(path).read_bytes() == data
    except OSError:
        return False


def _same_pixels(path, image, max_pixels):
    try:
        pixels = io.open_image(path, max_pixels=max_pixels)[0]
    except KmzError:  # not an image, or not one kmz may read: not this run's output
        return False
    expected = image.to_array()
    if pixels.shape[2] == 3 and expected.shape[2] == 4 and (expected[:, :, 3] == 255).all():
        expected = expected[:, :, :3]  # open_image drops an alpha that is 255 everywhere
    return np.array_equal(pixels, expected)


def _convert_one(convert, source, target, found, job):
    """Result fields of one file; whatever goes wrong is this file's failure only. The
    error names the file (format errors, for one, do not)."""
    start = time.perf_counter()
    try:
        result = check_written(source, target, job) if found else convert(source, target, job)
        status, error = "done", None
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
    """The task a worker runs: [(source, target, found), ...] -> a result dict per file."""
    with _one_thread():
        return [_convert_one(convert, source, target, found, job) for source, target, found in tasks]


def _stream_chunk(parent, sender, tasks, job, convert):
    _die_with_parent(parent)
    with _one_thread():
        for source, target, found in tasks:
            sender.send(_convert_one(convert, source, target, found, job))
    sender.close()


# Workers end with the batch process. When it is killed outright (SIGKILL, the OOM
# killer) nothing of it runs to stop them, and a pool worker waiting on its task queue
# would not notice either: its siblings, forked from the same process, hold the queue's
# write end open. Linux's parent-death signal (prctl PR_SET_PDEATHSIG) has the kernel
# kill the worker the moment its parent ends, even inside a compiled loop that holds the
# GIL; other systems fall back on a thread polling os.getppid(), which can act only
# between bytecodes. The parent must be the batch process itself, so the start method is
# fixed: fork on Linux (what Python 3.11 uses; forkserver, the default from 3.14, would
# make the server the parent), spawn elsewhere.
_CONTEXT = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_POLL_PARENT_SECONDS = 0.5


def _parent_death_signal(signum):
    """Have the kernel send signum to this process when its parent thread ends; False
    where prctl is not available. (The parent is the thread that forked this process:
    the pool's are forked by the thread that runs the batch, isolate_chunk's by a thread
    that waits for them to end.)"""
    if sys.platform != "linux":
        return False
    return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum) == 0


def _poll_parent(parent):
    while os.getppid() == parent:
        time.sleep(_POLL_PARENT_SECONDS)
    os._exit(1)


def _die_with_parent(parent):
    """The worker initializer: end this process when the process `parent` ends."""
    if not _parent_death_signal(signal.SIGKILL):
        threading.Thread(target=_poll_parent, args=(parent,), daemon=True, name="kmz-parent").start()
    if os.getppid() != parent:  # it ended before the signal was armed
        os._exit(1)


def _death(exitcode):
    if exitcode is not None and exitcode < 0:
        return f"signal {-exitcode}" + (f", {signal.Signals(-exitcode).name}" if -exitcode in signal.valid_signals() else "")
    return f"exit status {exitcode}"


def isolate_chunk(tasks, job, convert=convert_file, attempts=2, stop=None):
    """Run a chunk whose worker died, in a process of its own that reports each file as it
    finishes, so a death points at exactly one file. That file is retried (an OOM kill may
    have been the neighbours' fault) and after `attempts` deaths recorded as failed; the
    files after it go on in a fresh process. Setting the `stop` event ends it early."""
    results, deaths = [], 0
    while len(results) < len(tasks):
        receiver, sender = _CONTEXT.Pipe(duplex=False)
        process = _CONTEXT.Process(
            target=_stream_chunk, args=(os.getpid(), sender, tasks[len(results) :], job, convert), daemon=True
        )
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
        self.pool = self._new_pool()
        self.isolator = ThreadPoolExecutor(workers, thread_name_prefix="kmz-isolate")
        self.stop = threading.Event()
        self.broken = False

    def _new_pool(self):
        return ProcessPoolExecutor(
            self.slots, mp_context=_CONTEXT, initializer=_die_with_parent, initargs=(os.getpid(),)
        )

    def submit(self, tasks, job, convert):
        if self.broken:
            self.pool.shutdown(wait=True)
            self.pool = self._new_pool()
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

    Of the plan's skipped tasks (the output exists), those the manifest records as done
    stay skipped; the others are checked (check_written) and recorded, or redone.

    workers: local processes (default: one per core); scheduler: a Dask scheduler address
    instead. chunk_size: files per task (default: enough chunks to balance, at most
    MAX_CHUNK). convert(source, target, job) -> {bytes, k, psnr, notes} does one file (tests pass
    their own); attempts: deaths in isolation before a file is failed (local pool)."""
    from tqdm import tqdm

    start = time.perf_counter()
    try:
        Path(manifest).parent.mkdir(parents=True, exist_ok=True)
        recorded = _recorded_outputs(manifest)
        # Unbuffered: a write that fails (a full disk) fails in record(), not again at close.
        log = open(manifest, "ab", buffering=0)
    except OSError as e:
        raise _manifest_error(manifest, e) from None
    tasks, skipped = list(plan.tasks), 0
    for task in plan.skipped:
        if os.path.abspath(task.target) in recorded:
            skipped += 1
        else:
            tasks.append(Task(task.source, task.target, found=True))
    summary = Summary(skipped=skipped, ignored=plan.ignored, manifest=Path(manifest))
    with log, tqdm(
        total=len(tasks), unit="file", disable=not progress, dynamic_ncols=True, file=sys.stderr
    ) as bar:

        def record(records):
            lines = memoryview("".join(json.dumps(r) + "\n" for r in records).encode())
            try:
                while lines:
                    lines = lines[log.write(lines) :]
            except OSError as e:
                raise _manifest_error(manifest, e) from None
            for r in records:
                if r["status"] == "done" and r["found"]:
                    summary.found += 1
                elif r["status"] == "done":
                    summary.done += 1
                    summary.bytes += r["bytes"]
                else:
                    summary.failed += 1
                    summary.failures.append(r)
                if on_record:
                    on_record(r)

        record(plan.failed)
        if tasks:
            backend = _DaskBackend(scheduler) if scheduler else _LocalBackend(workers or default_workers(), attempts)
            try:
                _drive(backend, tasks, job, convert, chunk_size, record, bar)
            except BaseException:
                backend.close(cancel=True)
                raise
            backend.close()
    summary.seconds = time.perf_counter() - start
    return summary


def _manifest_error(manifest, error):
    return WriteError(f"{manifest}: cannot write the manifest ({error.strerror or error})")


_RECORD_START = b'{"path": '  # how every line kmz writes begins (json.dumps of _record's dict)


def _recorded_outputs(manifest):
    """The outputs (absolute paths) whose last record in the manifest says done. A last
    line without its newline was cut short by a kill: it is removed, so that the next
    record starts a line of its own (its file is then found written and checked).

    Only a manifest is read, and cut: WriteError for a file that is not a regular one
    (/dev/zero would never end) or does not begin as kmz's lines do (an image given by
    mistake must not lose its last "line")."""
    try:
        mode = os.stat(manifest).st_mode
    except FileNotFoundError:
        return set()
    if not stat.S_ISREG(mode):
        raise WriteError(f"{manifest}: not a regular file, so not a manifest")
    status, length = {}, 0
    with open(manifest, "rb+") as log:
        start = log.read(len(_RECORD_START))
        if start and start != _RECORD_START:
            raise WriteError(f"{manifest}: exists and is not a kmz manifest (give another --manifest)")
        log.seek(0)
        for line in log:
            if not line.endswith(b"\n"):
                if not line.startswith(_RECORD_START):
                    raise WriteError(f"{manifest}: its last line is not a kmz record (give another --manifest)")
                log.truncate(length)
                break
            length += len(line)
            try:
                entry = json.loads(line)
                status[os.path.abspath(entry["output"])] = entry["status"]
            except (ValueError, KeyError, TypeError):  # not a line kmz wrote: not a record
                continue
    return {output for output, last in status.items() if last == "done"}


def _source_bytes(task):
    try:
        return os.stat(task.source).st_size
    except OSError:  # gone since the plan: the worker will report it
        return 0


def _as_given(item, task, result):
    """A worker's result, its error naming the input and output as the user gave them
    (the worker had their absolute paths)."""
    if not result.get("error"):
        return result
    source, target, _ = item
    return dict(result, error=result["error"].replace(source, str(task.source)).replace(target, str(task.target)))


def _drive(backend, tasks, job, convert, chunk_size, record, bar):
    """Keep about two chunks per slot in flight (bounded memory for millions of files, and
    few chunks to redo when a worker dies); record each chunk as it returns, and when
    stopped (Ctrl-C, an error) those that had returned and were not yet recorded."""
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
        items = [(os.path.abspath(t.source), os.path.abspath(t.target), t.found) for t in chunk]
        by_path.update({item: t for item, t in zip(items, chunk)})
        queue.append(items)
    inflight = {}

    def collect(items, results):
        tasks = [by_path[item] for item in items]
        record([_record(task, **_as_given(item, task, result)) for item, task, result in zip(items, tasks, results)])
        bar.update(len(items))

    try:
        while queue or inflight:
            while queue and len(inflight) < 2 * backend.slots:
                items = queue.popleft()
                inflight[backend.submit(items, job, convert)] = items
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            # Several may be done: recorded in the order sent (a set's order is arbitrary).
            for future in [f for f in inflight if f in done]:
                items = inflight.pop(future)
                try:
                    results = future.result()
                except Exception as error:
                    retries = backend.retry(items, error, job, convert)
                    if retries is None:
                        raise KmzError(f"batch run stopped: {type(error).__name__}: {error}") from error
                    inflight.update(retries)
                    continue
                collect(items, results)
    except BaseException:
        # Their outputs are written: without a line, a rerun would have to check them.
        for future, items in inflight.items():
            if future.done() and not future.cancelled() and future.exception() is None:
                collect(items, future.result())
        raise
