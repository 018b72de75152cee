"""The kmz command: a thin layer over the library.

main(argv) returns the exit status: 0 success, 1 a bad file or failed operation,
2 bad usage, 130 interrupted (Ctrl-C), 141 standard output closed early (a reader
such as `head` went away; 128 + SIGPIPE, as a shell reports a program that signal
ends). Every failure is one line on stderr, `kmz: error: ...`, made here and nowhere
else; a closed pipe is silent.

"-" names standard input (for INPUT) or standard output (for -o) of encode, decode
and info; encode and decode write to standard output by default when reading from
it. When standard output carries the image, the summary line goes to stderr.
"""

import argparse
import functools
import json
import math
import os
import signal
import sys
import warnings
from pathlib import Path

from . import __version__
from . import checks
from . import format as fmt
from . import errors
from . import io
from . import sweep
from .errors import KmzError, PixelLimitError, PixelLimitWarning
from .image import DEFAULT_K, LOSSY_FORMATS, encode, frombytes
from .progress import Progress
from .targets import DEFAULT_MAX_K

STDIO = "-"  # as INPUT, standard input; as -o, standard output


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line, like every other kmz error; the usage is one --help away.
        self.exit(2, f"kmz: error: {message} (see '{self.prog} --help')\n")


def _file(text):
    """An input or -o: a file's path, or - for standard input or output."""
    if text == STDIO:
        return STDIO
    path = Path(text)
    if not path.name:  # '.', '/', '': no file, and no name to derive an output from
        raise argparse.ArgumentTypeError(f"{text!r} is not a file")
    return path


def _path(text):
    """A folder, a batch source or the manifest: '' is refused, not taken for the
    current folder (an unset variable in `-o "$OUT"` must not fill the folder the
    command runs in)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path names nothing")
    return Path(text)


def _whole(name, low, high):
    """An argparse type: a whole number from low to high, named in its messages."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = text  # checks.whole names it
        try:
            return checks.whole(name, value, low, high)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


_seed = _whole("seed", 0, 2**32 - 1)
_k = _whole("K", 1, fmt.MAX_K)


def _frame(text):
    if not (text.isascii() and text.isdigit()):  # isdigit alone takes '²', which int() refuses
        raise argparse.ArgumentTypeError(f"frame must be a whole number from 0, not {text!r}")
    return int(text)


def _colour(text):
    try:
        io.background_rgb(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _add_limit_options(p, verb, checksum):
    p.add_argument(
        "--no-limit", dest="max_pixels", action="store_const", const=None, default=fmt.PACKAGE_LIMIT,
        help=f"{verb} images of any size (default: refuse more than twice kmz.MAX_IMAGE_PIXELS)",
    )
    if checksum:
        p.add_argument("--skip-checksum", dest="verify_checksum", action="store_false",
                       help="do not verify the CRC-32 (to salvage a damaged file); every other check stays")


def _add_encode_options(p):
    """The options of an encode, shared by encode and batch; returns their actions."""
    target = p.add_mutually_exclusive_group()
    return [
        p.add_argument("-k", type=_k, help=f"palette size K, 1 to 65536 (default: {DEFAULT_K}); with "
                       f"--psnr or --max-bytes, the largest K searched (default: {DEFAULT_MAX_K})"),
        p.add_argument("--seed", type=_seed, default=0, help="random seed for k-means (default: 0)"),
        p.add_argument("--space", choices=("rgb", "oklab"), default="rgb",
                       help="colour space k-means measures distance in (default: rgb)"),
        p.add_argument("--dither", action="store_true", help="Floyd-Steinberg error diffusion (K <= 256)"),
        p.add_argument("--frame", type=_frame, help="the frame of an animation (or layer of a PSD) to encode, from 0 "
                       "(default: the first frame, a PSD's composite; with a note)"),
        p.add_argument("--background", type=_colour, default=io.DEFAULT_BACKGROUND,
                       help="flatten transparency onto this colour: a name or #rrggbb (default: keep it, RGBA)"),
        target.add_argument("--psnr", type=_positive(float), metavar="DB",
                            help="choose the smallest K whose PSNR reaches DB (a search)"),
        target.add_argument("--max-bytes", type=_positive(int), metavar="N",
                            help="choose the largest K whose .kmz file fits in N bytes (with ctx or mix, "
                            "whose sizes need not grow with K: a K that fits where K + 1 does not); "
                            "for a .kmz output only"),
        p.add_argument("--strict", action="store_true",
                       help="with --psnr or --max-bytes: when the target cannot be met, write nothing "
                       "and exit 1 (default: write the closest K and exit 0)"),
        p.add_argument(
            "--coding", choices=list(fmt.CODINGS.values()), default="raw",
            help="index coding: raw (bit-packed, the size formula), ctx (context-modelled, "
            "smaller) or mix (context mixing and a match model: smaller still up to K = 256, but "
            f"slower to encode and decode); ctx and mix take K up to {fmt.CODED_MAX_K} "
            "(default: raw; encode's summary says when ctx would be smaller); other than raw, "
            "for a .kmz output only",
        ),
    ]


def _check_coded_k(args, k):
    """A usage error unless --coding takes K = k."""
    try:
        fmt.check_coded_k(args.coding, k)
    except ValueError as e:
        args.usage_error(f"--{e}")


def _check_encode_options(args):
    """Usage errors that argparse cannot see, before any slow work."""
    if args.k is not None:
        _check_coded_k(args, args.k)
    if args.dither and args.k is not None and args.k > 256:
        args.usage_error(f"--dither needs K <= 256, not {args.k}")
    if args.strict and args.psnr is None and args.max_bytes is None:
        args.usage_error("--strict needs a target: --psnr or --max-bytes")


def _parser():
    parser = _Parser(
        prog="kmz", description="k-means colour quantization image codec",
        epilog="INPUT may be - for standard input, and -o - writes to standard output; "
        "a command reading standard input writes to standard output unless -o says otherwise. "
        "Exit status: 0 done, 1 a bad file or a failed operation, 2 bad usage, 130 interrupted, "
        "141 standard output closed early (| head).",
    )
    parser.add_argument("--version", action="version", version=f"kmz {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("encode", help="encode an image as .kmz (or, by -o's suffix, another format)")
    p.add_argument("input", type=_file, help="any image Pillow can read, or - for standard input")
    p.add_argument("-o", "--output", type=_file,
                   help="output path; its suffix picks the format: .kmz, or any format Pillow writes "
                   "(.png, .gif, ...: the quantized image, a palette image where the format has one); "
                   "- for standard output, as .kmz (default: INPUT with suffix .kmz; standard output "
                   "when INPUT is -)")
    _add_encode_options(p)
    p.add_argument("--force", action="store_true", help="replace an existing output (never a non-regular file)")
    _add_limit_options(p, "encode", checksum=False)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on a terminal")
    p.set_defaults(run=_encode, usage_error=p.error)

    p = commands.add_parser("decode", help="decode a .kmz file to PNG (or, by -o's suffix, another format)")
    p.add_argument("input", type=_file, help="a .kmz file, or - for standard input")
    p.add_argument("-o", "--output", type=_file,
                   help="output path; its suffix picks the format (.png, or any other Pillow writes); "
                   "- for standard output, as PNG (default: INPUT with suffix .png; standard output "
                   "when INPUT is -)")
    p.add_argument("--force", action="store_true", help="replace an existing output (never a non-regular file)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on a terminal")
    _add_limit_options(p, "decode", checksum=True)
    p.set_defaults(run=_decode, usage_error=p.error)

    p = commands.add_parser("info", help="explain a .kmz file: header and size breakdown")
    p.add_argument("input", type=_file, help="a .kmz file, or - for standard input")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    _add_limit_options(p, "read", checksum=True)
    p.set_defaults(run=_info, usage_error=p.error)

    p = commands.add_parser("sweep", help="encode at several K: a table, a chart and a contact sheet")
    p.add_argument("input", type=_file, help="any image Pillow can read")
    ks = dict(type=_k_list, metavar="LIST",
              help="comma-separated K values (default: %s)" % ",".join(map(str, sweep.DEFAULT_KS)))
    p.add_argument("-k", default=sweep.DEFAULT_KS, **ks)
    p.add_argument("--k", **dict(ks, help=argparse.SUPPRESS))  # the spelling before -k: scripts keep working
    p.add_argument("-o", "--output-dir", type=_path, metavar="DIR",
                   help="folder for NAME-sweep-chart.png and NAME-sweep-sheet.png (default: INPUT's folder)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed for k-means (default: 0)")
    p.add_argument("--coding", choices=list(fmt.CODINGS.values()), default="raw",
                   help=f"index coding of the files measured, as encode's (default: raw); ctx and mix "
                   f"take K up to {fmt.CODED_MAX_K}")
    p.add_argument("--force", action="store_true", help="replace existing outputs")
    _add_limit_options(p, "sweep", checksum=False)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on a terminal")
    p.set_defaults(run=_sweep, usage_error=p.error)

    p = commands.add_parser(
        "batch",
        help="encode (or decode) files, folders and globs into a mirrored tree",
        description="Encode (or with --decode, decode) every image under SRC into DST, mirroring "
        "the tree. Folders are walked recursively for image files (hidden ones and other "
        "files are left out); files named explicitly are always tried. Each file's result is "
        "appended to a JSON-lines manifest. A rerun resumes: existing outputs are skipped, "
        "and those the manifest does not record are checked and recorded; one that is not "
        "what this run would write fails its input, unless --force.",
    )
    p.add_argument("sources", nargs="+", type=_path, metavar="SRC",
                   help="a file, a folder or a glob (quoted: '**' recurses)")
    p.add_argument("-o", "--output", type=_path, required=True, metavar="DST", help="the output folder")
    p.add_argument("--decode", action="store_true", help="decode .kmz files to PNG instead of encoding")
    encode_options = _add_encode_options(p)
    _add_limit_options(p, "encode or decode", checksum=False)
    p.add_argument("--workers", type=_positive(int), metavar="N", help="local worker processes (default: one per core)")
    p.add_argument("--chunk-size", type=_positive(int), metavar="N", help="files per task (default: automatic, at most 100)")
    p.add_argument("--scheduler", metavar="ADDR", help="run on a Dask cluster, e.g. tcp://HOST:8786 (needs kmz[dask])")
    p.add_argument("--manifest", type=_path, metavar="PATH", help="JSON-lines log, appended (default: DST/kmz-manifest.jsonl)")
    p.add_argument("--force", action="store_true", help="redo outputs that exist")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no line per failed file")
    p.set_defaults(run=_batch, usage_error=p.error, encode_options=encode_options)
    return parser


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, not {text}")
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
        return value

    return parse


def _k_list(text):
    ks = [_k(part.strip()) for part in text.split(",") if part.strip()]
    if not ks:
        raise argparse.ArgumentTypeError("expected a comma-separated list of K values")
    return tuple(sorted(set(ks)))


def _plural(count, word):
    return f"{count} {word}{'' if count == 1 else 's'}"


def _input_name(args):
    return "<stdin>" if args.input == STDIO else str(args.input)


def _source(args):
    """(what to read, its name in messages): standard input for -, else the path."""
    if args.input != STDIO:
        return args.input, _input_name(args)
    if sys.stdin is None or sys.stdin.isatty():
        args.usage_error("standard input is a terminal: redirect a file or a pipe to it for INPUT -")
    return sys.stdin.buffer, _input_name(args)


def _destination(args, suffix, stdout_format):
    """(where to write, its name in messages, format): -o, else INPUT with `suffix`;
    standard output for -o -, and by default when reading standard input. Checked
    before the work: an output that exists, or names the input, or a format unknown."""
    output = args.output or (STDIO if args.input == STDIO else args.input.with_suffix(suffix))
    if output == STDIO:
        if sys.stdout is None or sys.stdout.isatty():
            args.usage_error("standard output is a terminal: redirect it, or name a file with -o")
        return sys.stdout.buffer, "<stdout>", stdout_format
    io.check_output(output, inputs=[args.input], force=args.force)
    return output, str(output), io.image_format(output)


def _check_kmz_only_options(args, name, format):
    """A usage error for options that describe the .kmz file when another format is
    written: another coder makes that file, whose size no target measured."""
    given = [f"--coding {args.coding}"] if args.coding != "raw" else []
    given += ["--max-bytes"] if args.max_bytes is not None else []
    if format != "KMZ" and given:
        args.usage_error(f"{' and '.join(given)} {'describe' if len(given) > 1 else 'describes'} a .kmz file; "
                         f"{name} would be written as {format}")


def _say(line, data_on_stdout):
    """The summary line: on stdout, unless that carries the image."""
    print(line, file=sys.stderr if data_on_stdout else sys.stdout)


def _encode(args):
    _check_encode_options(args)
    source, source_name = _source(args)
    output, name, format = _destination(args, ".kmz", "KMZ")
    _check_kmz_only_options(args, name, format)
    with Progress(quiet=args.quiet) as progress:
        progress(f"reading {source_name}")
        image = _quantized(source, args, progress)
        hint = ""
        # Measured before the write, so that the write is the last step: a Ctrl-C while
        # measuring leaves no file behind.
        if format == "KMZ" and image.coding == "raw" and image.k <= fmt.CODED_MAX_K:
            progress("measuring --coding ctx")
            ctx, exact = image.size_with("ctx")
            if ctx < image.header.file_size:
                hint = f"; --coding ctx would write {'' if exact else 'about '}{ctx:,} bytes"
        progress(f"writing {name}")
        size = image.save(output, format=format, force=args.force)
    asked = image.target.k if image.target else args.k or DEFAULT_K
    note = "" if image.k == asked else f" (the image has only {_plural(image.k, 'colour')})"
    target = f"; {image.target.describe()}" if image.target else ""
    if format == "KMZ":
        entry_bits = 8 * image.channels
        formula_bits = entry_bits * image.k + image.width * image.height * image.bits_per_index
        coded = "" if image.coding == "raw" else f", coding {image.coding} (raw: {image.header.file_size:,} bytes)"
        details = (f"{_plural(image.bits_per_index, 'bit')} per index, formula {entry_bits}K + N*b = "
                   f"{formula_bits:,} bits ({-(-formula_bits // 8):,} bytes) + {fmt.OVERHEAD} bytes overhead, ")
    else:
        coded, details = f" as {format}", ""
    _say(f"{name}: {size:,} bytes{coded}, K={image.k}{note}, {details}PSNR {image.psnr:.2f} dB{target}{hint}"
         f"{_lossy_note(format)}", output is sys.stdout.buffer)


def _lossy_note(format):
    """What the summary adds when the output's format changed the pixels written."""
    return f"; {format} does not keep the exact pixels" if format in LOSSY_FORMATS else ""


def _read_image(source, frame=None, background=io.DEFAULT_BACKGROUND, max_pixels=fmt.PACKAGE_LIMIT):
    """The pixels of an input image (io.open_image), each note on what was done to it
    printed on stderr."""
    pixels, notes = io.open_image(source, frame, background, max_pixels)
    for note in notes:
        print(f"kmz: note: {note}", file=sys.stderr)
    return pixels


def _quantized(source, args, progress):
    """The KmzImage of the input; its pixels are not kept once quantized."""
    pixels = _read_image(source, args.frame, args.background, args.max_pixels)
    if pixels.shape[2] == 4 and (args.space != "rgb" or args.dither):
        args.usage_error("--space oklab and --dither are for opaque images; this one has transparency"
                         " (--background COLOUR flattens it)")
    return encode(pixels, k=args.k, seed=args.seed, psnr=args.psnr, max_bytes=args.max_bytes,
                  strict=args.strict, progress=progress, coding=args.coding, space=args.space,
                  dither=args.dither, max_pixels=None)  # checked by open_image


def _naming_input(run):
    """Put the input's name in front of a FormatError, whose message (from kmz.format,
    which sees only bytes) cannot say which file it is about."""

    @functools.wraps(run)
    def wrapper(args):
        try:
            return run(args)
        except errors.FormatError as e:
            raise type(e)(f"{_input_name(args)}: {e}") from None

    return wrapper


@_naming_input
def _decode(args):
    source, source_name = _source(args)
    output, name, format = _destination(args, ".png", "PNG")
    with Progress(quiet=args.quiet) as progress:
        progress(f"reading {source_name}")
        data = io.read_kmz(source, args.max_pixels)
        progress("decoding")
        image = frombytes(data, args.verify_checksum, max_pixels=None)  # read_kmz checked the limit
        del data  # up to 2 bytes a pixel, and not needed for writing
        progress(f"writing {name}")
        size = image.save(output, format=format, force=args.force)
    _say(f"{name}: {image.width}x{image.height}, K={image.k}, {size:,} bytes{_lossy_note(format)}",
         output is sys.stdout.buffer)


def _sweep(args):
    if args.input == STDIO:
        args.usage_error("sweep reads a file, not standard input: its outputs are named after INPUT")
    _check_coded_k(args, max(args.k))
    folder = args.output_dir or args.input.parent
    sheet_path = folder / f"{args.input.stem}-sweep-sheet.png"
    chart_path = folder / f"{args.input.stem}-sweep-chart.png"
    plot = sweep.chart_available()
    for path in (sheet_path, chart_path) if plot else (sheet_path,):
        io.check_output(path, inputs=[args.input], force=args.force)
    with Progress(quiet=args.quiet) as progress:
        progress(f"reading {args.input}")
        pixels = _read_image(args.input, max_pixels=args.max_pixels)
        input_bytes = args.input.stat().st_size
        rows = sweep.sweep(pixels, args.k, seed=args.seed, input_bytes=input_bytes, progress=progress,
                           coding=args.coding, max_pixels=None)  # checked by open_image
        progress("drawing the contact sheet")
        sheet = sweep.contact_sheet(pixels, rows)
        # Made only now, so that a sweep that fails or is interrupted leaves no empty folder.
        io.make_folder(folder)
        io.save_pil(sheet_path, sheet)
        if plot:
            progress("drawing the chart")
            coded = "" if args.coding == "raw" else f", coding {args.coding}"
            figure = sweep.chart(rows, title=f"{args.input.name}: size and quality against K{coded}")
            io.write_atomic(chart_path, lambda f: figure.savefig(f, format="png"))
    height, width = pixels.shape[:2]
    print(f"{args.input}: {width}x{height}, {input_bytes:,} bytes; raw 24-bit {3 * width * height:,} bytes; "
          f".kmz files with coding {args.coding}\n")
    print(sweep.table(rows) + "\n")
    print(f"{sheet_path}: contact sheet, the original and {_plural(len(rows), 'K value')}")
    if plot:
        print(f"{chart_path}: chart of bytes and PSNR against K")
    else:
        print("kmz: note: install kmz[plot] for the chart", file=sys.stderr)


def _batch(args):
    # Imported here, so the other commands do not load the batch machinery.
    from tqdm import tqdm

    from . import batch

    given = [action.option_strings[0] for action in args.encode_options if getattr(args, action.dest) != action.default]
    if args.decode and given:
        args.usage_error(f"--decode takes no encoding options, not {', '.join(given)}")
    _check_encode_options(args)
    if args.scheduler and args.workers:
        args.usage_error("--workers is for the local pool; a Dask cluster has its own workers")
    manifest = args.manifest or args.output / batch.MANIFEST_NAME
    plan = batch.plan(args.sources, args.output, decode=args.decode, force=args.force, manifest=manifest)
    options = {action.dest: getattr(args, action.dest) for action in args.encode_options}
    job = batch.Job(decode=args.decode, max_pixels=args.max_pixels, **options)

    def report(record):
        if record["status"] == "failed" and not args.quiet:
            tqdm.write(f"kmz: failed: {record['error']}", file=sys.stderr)

    summary = batch.run(
        plan,
        job,
        manifest=manifest,
        workers=args.workers,
        scheduler=args.scheduler,
        chunk_size=args.chunk_size,
        progress=not args.quiet and sys.stderr.isatty(),
        on_record=report,
    )
    print(summary)
    if summary.failed:
        total = summary.done + summary.found + summary.failed
        raise KmzError(f"{summary.failed:,} of {total:,} files tried failed (see {summary.manifest})")


def describe(data, verify_checksum=True, max_pixels=fmt.PACKAGE_LIMIT):
    """The header fields and the size breakdown of a .kmz file, as a dict: `kmz info
    --json`, whose keys docs/info.md lists (a test holds the two to each other)."""
    header = frombytes(data, verify_checksum, max_pixels).header
    n, k, b = header.pixel_count, header.k, header.bits_per_index
    return {
        "version": fmt.VERSION,
        "coding": fmt.CODINGS[header.coding],
        "width": header.width,
        "height": header.height,
        "k": k,
        "bits_per_index": b,
        "channels": "RGBA" if header.alpha else "RGB",
        "palette_bits": 8 * header.channels * k,
        "index_bits": n * b,
        "padding_bits": 8 * fmt.bitpack.packed_size(n, b) - n * b,
        "overhead_bytes": fmt.OVERHEAD,
        "palette_bytes": header.palette_size,  # 0 for mix: the coded data holds the palette
        "index_bytes": len(data) - fmt.OVERHEAD - header.palette_size,
        "formula_bytes": header.file_size,
        "file_bytes": len(data),
        "raw_rgb_bytes": 3 * n,
    }


@_naming_input
def _info(args):
    source, source_name = _source(args)
    info = describe(io.read_kmz(source, args.max_pixels), args.verify_checksum, max_pixels=None)  # checked
    if args.json:
        print(json.dumps(info, indent=2))
        return
    formula_bits = info["palette_bits"] + info["index_bits"]
    entry_bits = info["palette_bits"] // info["k"]
    ratio = info["file_bytes"] / info["raw_rgb_bytes"]
    index_data = "index data" if info["palette_bytes"] else "palette+indices"
    print(
        f"{source_name}: kmz version {info['version']}, coding {info['coding']}\n"
        f"  size            {info['width']} x {info['height']} = {info['width'] * info['height']:,} pixels\n"
        f"  palette         K = {info['k']}, {_plural(info['bits_per_index'], 'bit')} per index\n"
        f"  channels        {info['channels']} ({entry_bits // 8} bytes per palette entry)\n"
        f"  palette bits    {entry_bits}K = {info['palette_bits']:,}\n"
        f"  index bits      N*b = {info['index_bits']:,}\n"
        f"  formula         {entry_bits}K + N*b = {formula_bits:,} bits"
        f" (+ {info['padding_bits']} padding bits)\n"
        f"  {index_data:<15} {info['index_bytes']:,} bytes, coding {info['coding']}\n"
        f"  overhead        {info['overhead_bytes']} bytes (24 header + 4 CRC-32)\n"
        f"  total           {info['formula_bytes']:,} bytes by the formula (raw coding),"
        f" {info['file_bytes']:,} bytes on disk"
        f" ({info['file_bytes'] / info['formula_bytes']:.1%} of the formula)\n"
        f"  raw RGB         24N = {8 * info['raw_rgb_bytes']:,} bits ({info['raw_rgb_bytes']:,} bytes);"
        f" this file is {ratio:.1%} of that"
    )


def _show_warning(message, category, *args, **kwargs):
    print(f"kmz: warning: {message}", file=sys.stderr)


def main(argv=None):
    try:
        # The `kmz` command (kmz_launch) holds Ctrl-C back while it imports kmz; let it
        # in here, where it ends in one line.
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        status = _run(sys.argv[1:] if argv is None else argv)
        sys.stdout.flush()  # a closed pipe shows here, not in the flush at exit
        return status
    except KeyboardInterrupt:
        print("kmz: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _discard_stdout()
        return 141


def _run(argv):
    """Run one command; every error it can meet becomes one line and an exit status."""
    parser = _parser()
    if not argv:  # bare `kmz`: the help, as asked for
        parser.print_help()
        return 0
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # the command's parser says it, so the hint names the command's --help
            args.usage_error(f"unrecognized arguments: {' '.join(unknown)}")
        with warnings.catch_warnings():
            warnings.simplefilter("always", PixelLimitWarning)
            warnings.showwarning = _show_warning
            args.run(args)
    except SystemExit as e:  # argparse: bad usage (2), also found in run, or --help (0)
        return e.code
    except KmzError as e:
        hint = " (--no-limit lifts the limit)" if isinstance(e, PixelLimitError) else ""
        print(f"kmz: error: {e}{hint}", file=sys.stderr)
        return 1
    except MemoryError:  # past an estimate that was too low: the allocation itself failed
        print("kmz: error: out of memory", file=sys.stderr)
        return 1
    return 0


def _discard_stdout():
    """Point standard output at /dev/null: Python flushes it again at exit, and a closed
    pipe there would print "Exception ignored ... BrokenPipeError"."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):  # no descriptor: a test's capture
        pass
