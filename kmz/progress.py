"""Stage lines on stderr for work that runs long: a person at a terminal sees what is
happening; a pipe or a log sees nothing.

The library never prints: its long functions accept `progress`, a callable given one
string per stage. Progress is such a callable for the command line.
"""

import sys
import threading
import time

DELAY = 1.0  # seconds of silence before the first line: quick work shows nothing


class Progress:
    """Writes "kmz: 1.2s quantizing K=64" lines to `stream` (default stderr) when it is
    a terminal and not quiet, once the work has run longer than `delay` seconds: at that
    moment the current stage, then each later stage as it starts. Use as a context
    manager, or call close() when the work ends."""

    def __init__(self, stream=None, quiet=False, delay=None):
        self.stream = sys.stderr if stream is None else stream
        delay = DELAY if delay is None else delay
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = not quiet and bool(isatty and isatty())
        self._start = time.monotonic()
        self._stage = None
        self._shown = self.enabled and delay <= 0
        self._closed = False
        self._lock = threading.Lock()
        self._timer = None
        if self.enabled and not self._shown:
            self._timer = threading.Timer(delay, self._reveal)
            self._timer.daemon = True
            self._timer.start()

    def __call__(self, stage):
        with self._lock:
            self._stage = stage
            if self._shown and not self._closed:
                self._write(stage)

    def _reveal(self):
        with self._lock:
            if self._closed:
                return
            self._shown = True
            if self._stage is not None:
                self._write(self._stage)

    def _write(self, stage):
        self.stream.write(f"kmz: {time.monotonic() - self._start:.1f}s {stage}\n")
        self.stream.flush()

    def close(self):
        with self._lock:
            self._closed = True
        if self._timer is not None:
            self._timer.cancel()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
