"""What the benches share: this clone's kmz, the corpus, optional tools, list options and
a child process's peak memory. Each bench imports it from its own folder."""

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"


def use_this_clone():
    """Import kmz from this clone, installed or not, and stop unless its compiled kernels
    are this clone's too: in an unbuilt clone, with another checkout installed in editable
    mode, Python takes kmz's .py files from here and the extension from there."""
    sys.path.insert(0, str(ROOT))
    try:
        import kmz
        from kmz import _coding, _kmeans
    except ModuleNotFoundError as error:
        if not (error.name or "").startswith("kmz"):
            raise
        sys.exit("build this clone first: pip install -e .")
    for module in (kmz, _coding, _kmeans):
        if not Path(module.__file__).resolve().is_relative_to(ROOT / "kmz"):
            sys.exit("build this clone first: pip install -e .")


def add_corpus(parser):
    parser.add_argument("--corpus", type=Path, default=CORPUS,
                        help="folder of image sets (default: shared/corpus beside the project folder)")


def require_corpus(corpus):
    if not corpus.is_dir():
        sys.exit(f"no corpus at {corpus}: pass --corpus")


def pngs(corpus, folder):
    """The PNG images of a corpus folder, sorted; stops (one line) when there are none."""
    require_corpus(corpus)
    paths = sorted((corpus / folder).glob("*.png"))
    if not paths:
        sys.exit(f"no images in {corpus / folder}")
    return paths


def missing(tool, left_out, install):
    """One line on stderr for an optional, benchmark-only tool that is not installed."""
    print(f"{tool} is not installed: {left_out} ({install})", file=sys.stderr)


def find_pngquant(left_out="its rows are left out"):
    """pngquant's path, or None after saying so."""
    path = shutil.which("pngquant")
    if path is None:
        missing("pngquant", left_out, "apt-get install pngquant")
    return path


def _values(convert):
    def parse(text):
        return [convert(value) for value in text.split(",") if value]

    parse.__name__ = convert.__name__  # argparse names it in "invalid ... value"
    return parse


class _Flatten(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, [value for group in values for value in group])


def add_list(parser, *flags, convert=str, nargs="+", **options):
    """An option of space-separated values; "a,b" is accepted too (the older spelling)."""
    parser.add_argument(*flags, nargs=nargs, type=_values(convert), action=_Flatten, **options)


def add_k(parser, default):
    add_list(parser, "-k", "--k", convert=int, default=default, metavar="K",
             help=f"palette sizes, space-separated (default: {' '.join(map(str, default))})")


def peak_bytes():
    """This process's peak resident memory (VmHWM): ru_maxrss would count the parent's
    too, since Linux keeps it across fork and exec."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024  # kB
