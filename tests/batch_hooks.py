"""Per-file functions that the batch tests pass to kmz.batch.run in place of convert_file.

They live in a module of their own so that worker processes (a local pool's or a Dask
cluster's) can import them by name. A file whose name contains "poison" kills the worker
every time; one whose name contains "flaky" kills it once (a marker file remembers),
as an out-of-memory kill caused by a neighbour would.
"""

import os
import signal

from kmz.batch import convert_file


def kill_on_poison(source, target, job):
    name = os.path.basename(source)
    if "poison" in name:
        os.kill(os.getpid(), signal.SIGKILL)
    if "flaky" in name and not os.path.exists(source + ".died"):
        open(source + ".died", "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return convert_file(source, target, job)
