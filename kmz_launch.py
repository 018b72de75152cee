"""The `kmz` command's entry point. It lives outside the kmz package so that it runs
before the package is imported:
- A Ctrl-C during the import of kmz (numpy, Pillow) would end in a traceback. SIGINT
  is held back during the import; kmz.cli.main lets it in, inside its handlers, where
  it ends in one line and exit 130. Once the command is over, SIGINT is held back
  again: a Ctrl-C while the interpreter exits changes nothing.
- numpy's OpenBLAS starts a thread per core at import, which costs more CPU than a
  small encode. kmz calls no BLAS routine that threads would speed up (its loops are
  its own C), so the command asks for one thread, unless the user said otherwise.
"""

import os
import signal


def main():
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    posix = hasattr(signal, "pthread_sigmask")  # elsewhere the import stays interruptible
    if posix:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    from kmz.cli import main as run

    status = run()
    if posix:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    return status
