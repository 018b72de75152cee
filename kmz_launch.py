"""The `kmz` command's entry point. It lives outside the kmz package so that it runs
before the package is imported: importing kmz (numpy, numba, Pillow) takes a second or
so, and a Ctrl-C then would end in a traceback. SIGINT is held back during the import;
kmz.cli.main lets it in, inside its handlers, where it ends in one line and exit 130.
"""

import signal


def main():
    if hasattr(signal, "pthread_sigmask"):  # POSIX; elsewhere the import stays interruptible
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    from kmz.cli import main as run

    return run()
