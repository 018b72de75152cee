"""The kmz command: a thin layer over the library.

main(argv) returns the exit status: 0 success, 1 a bad file or failed operation,
2 bad usage. KmzError becomes one line on stderr, here and nowhere else.
"""

import argparse
import functools
import json
import sys
import warnings
from pathlib import Path

from PIL import ImageColor

from . import format as fmt
from . import errors
from . import io
from . import sweep
from .errors import KmzError, PixelLimitError, PixelLimitWarning
from .image import DEFAULT_K, encode, frombytes, psnr
from .progress import Progress
from .targets import DEFAULT_MAX_K


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line, like every other kmz error; the usage is one --help away.
        self.exit(2, f"kmz: error: {message} (see '{self.prog} --help')\n")


def _input(text):
    path = Path(text)
    if not path.name:  # '.', '/', '': no file, and no name to derive an output from
        raise argparse.ArgumentTypeError(f"{text!r} is not a file")
    return path


def _whole(name, low, high):
    """An argparse type: a whole number from low to high, named in its messages."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, not {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} must be between {low} and {high}, not {value}")
        return value

    return parse


_seed = _whole("seed", 0, 2**32 - 1)
_k = _whole("K", 1, fmt.MAX_K)


def _frame(text):
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"frame must be a whole number from 0, not {text!r}")
    return int(text)


def _colour(text):
    try:
        ImageColor.getrgb(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"unknown colour {text!r} (a name such as white, or #rrggbb)") from None
    return text


def _add_limit_options(p, checksum):
    p.add_argument(
        "--no-limit", dest="max_pixels", action="store_const", const=None, default=fmt.PACKAGE_LIMIT,
        help="decode images of any size (default: refuse more than twice kmz.MAX_IMAGE_PIXELS)",
    )
    if checksum:
        p.add_argument("--skip-checksum", dest="verify_checksum", action="store_false",
                       help="do not verify the CRC-32 (to salvage a damaged file); every other check stays")


def _parser():
    parser = _Parser(prog="kmz", description="k-means colour quantization image codec")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("encode", help="encode an image as .kmz")
    p.add_argument("input", type=_input, help="any image Pillow can read")
    p.add_argument("-o", "--output", type=Path, help="output path (default: INPUT with suffix .kmz)")
    p.add_argument("-k", type=_k, help=f"palette size K, 1 to 65536 (default: {DEFAULT_K}); with "
                   f"--psnr or --max-bytes, the largest K searched (default: {DEFAULT_MAX_K})")
    p.add_argument("--seed", type=_seed, default=0, help="random seed for k-means (default: 0)")
    p.add_argument("--space", choices=("rgb", "oklab"), default="rgb",
                   help="colour space k-means measures distance in (default: rgb)")
    p.add_argument("--dither", action="store_true", help="Floyd-Steinberg error diffusion (K <= 256)")
    p.add_argument("--force", action="store_true", help="replace an existing output")
    p.add_argument("--frame", type=_frame, help="the frame of an animation to encode (default: 0, with a note)")
    p.add_argument("--background", type=_colour, default=io.DEFAULT_BACKGROUND,
                   help="flatten transparency onto this colour: a name or #rrggbb (default: keep it, RGBA)")
    _add_limit_options(p, checksum=False)
    target = p.add_mutually_exclusive_group()
    target.add_argument("--psnr", type=_positive(float), metavar="DB",
                        help="choose the smallest K whose PSNR reaches DB (a search)")
    target.add_argument("--max-bytes", type=_positive(int), metavar="N",
                        help="choose the largest K whose file fits in N bytes")
    p.add_argument("--strict", action="store_true",
                   help="when the target cannot be met, write nothing and exit 1 "
                   "(default: write the closest K and exit 0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on a terminal")
    p.add_argument(
        "--coding", choices=list(fmt.CODINGS.values()), default="raw",
        help="index coding: raw (bit-packed, the size formula) or ctx (context-modelled, "
        f"smaller; K up to {fmt.CTX_MAX_K}) (default: raw)",
    )
    p.set_defaults(run=_encode, usage_error=p.error)

    p = commands.add_parser("decode", help="decode a .kmz file to PNG")
    p.add_argument("input", type=_input, help="a .kmz file")
    p.add_argument("-o", "--output", type=Path, help="output path (default: INPUT with suffix .png)")
    p.add_argument("--force", action="store_true", help="replace an existing output")
    _add_limit_options(p, checksum=True)
    p.set_defaults(run=_decode)

    p = commands.add_parser("info", help="explain a .kmz file: header and size breakdown")
    p.add_argument("input", type=_input, help="a .kmz file")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    _add_limit_options(p, checksum=True)
    p.set_defaults(run=_info)

    p = commands.add_parser("sweep", help="encode at several K: a table, a chart and a contact sheet")
    p.add_argument("input", type=_input, help="any image Pillow can read")
    p.add_argument("--k", type=_k_list, default=sweep.DEFAULT_KS, metavar="LIST",
                   help="comma-separated K values (default: %s)" % ",".join(map(str, sweep.DEFAULT_KS)))
    p.add_argument("-o", "--output-dir", type=Path, metavar="DIR",
                   help="folder for NAME-sweep-chart.png and NAME-sweep-sheet.png (default: INPUT's folder)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed for k-means (default: 0)")
    p.add_argument("--force", action="store_true", help="replace existing outputs")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on a terminal")
    p.set_defaults(run=_sweep)

    p = commands.add_parser(
        "batch",
        help="encode (or decode) files, folders and globs into a mirrored tree",
        description="Encode (or with --decode, decode) every image under SRC into DST, mirroring "
        "the tree. Folders are walked recursively for image files (hidden ones and other "
        "files are left out); files named explicitly are always tried. Existing outputs are "
        "skipped, so a rerun resumes; each file's result is appended to a JSON-lines manifest.",
    )
    p.add_argument("sources", nargs="+", metavar="SRC", help="a file, a folder or a glob (quoted: '**' recurses)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="DST", help="the output folder")
    p.add_argument("--decode", action="store_true", help="decode .kmz files to PNG instead of encoding")
    p.add_argument("-k", type=_k, help="palette size K, 1 to 65536 (default: 64)")
    p.add_argument("--seed", type=_seed, help="random seed for k-means (default: 0)")
    p.add_argument("--workers", type=_positive(int), metavar="N", help="local worker processes (default: one per core)")
    p.add_argument("--chunk-size", type=_positive(int), metavar="N", help="files per task (default: automatic, at most 100)")
    p.add_argument("--scheduler", metavar="ADDR", help="run on a Dask cluster, e.g. tcp://HOST:8786 (needs kmz[dask])")
    p.add_argument("--manifest", type=Path, metavar="PATH", help="JSON-lines log, appended (default: DST/kmz-manifest.jsonl)")
    p.add_argument("--force", action="store_true", help="redo outputs that exist")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no line per failed file")
    p.set_defaults(run=_batch, usage_error=p.error)
    return parser


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, not {text}")
        return value

    return parse


def _k_list(text):
    ks = [_k(part.strip()) for part in text.split(",") if part.strip()]
    if not ks:
        raise argparse.ArgumentTypeError("expected a comma-separated list of K values")
    return tuple(sorted(set(ks)))


def _encode(args):
    if args.coding == "ctx" and args.k is not None and args.k > fmt.CTX_MAX_K:
        args.usage_error(f"--coding ctx supports K up to {fmt.CTX_MAX_K}, not {args.k}")
    if args.dither and args.k is not None and args.k > 256:
        args.usage_error(f"--dither needs K <= 256, not {args.k}")
    output = args.output or args.input.with_suffix(".kmz")
    io.check_output(output, inputs=[args.input], force=args.force)
    with Progress(quiet=args.quiet) as progress:
        progress(f"reading {args.input}")
        pixels, notes = io.open_image(args.input, args.frame, args.background, args.max_pixels)
        for note in notes:
            print(f"kmz: note: {note}", file=sys.stderr)
        if pixels.shape[2] == 4 and (args.space != "rgb" or args.dither):
            args.usage_error("--space oklab and --dither are for opaque images; this one has transparency"
                             " (--background COLOUR flattens it)")
        image = encode(pixels, k=args.k, seed=args.seed, psnr=args.psnr, max_bytes=args.max_bytes,
                       strict=args.strict, progress=progress, coding=args.coding,
                       space=args.space, dither=args.dither,
                       max_pixels=None)  # checked by open_image
        progress("packing")
        data = image.tobytes()
        progress(f"writing {output}")
        io.write_bytes(output, data)
    entry_bits = 8 * image.channels
    formula_bits = entry_bits * image.k + image.width * image.height * image.bits_per_index
    quality = psnr(pixels, image.to_array())
    asked = image.target.k if image.target else args.k or DEFAULT_K
    note = "" if image.k == asked else f" (the image has only {image.k} colours)"
    target = f"; {image.target.describe()}" if image.target else ""
    coded = "" if image.coding == "raw" else f", coding {image.coding} (raw: {image.header.file_size:,} bytes)"
    print(
        f"{output}: {len(data):,} bytes{coded}, K={image.k}{note}, {image.bits_per_index} bits per index, "
        f"formula {entry_bits}K + N*b = {formula_bits:,} bits + {fmt.OVERHEAD} bytes overhead, "
        f"PSNR {quality:.2f} dB{target}"
    )


def _naming_input(run):
    """Put the input's name in front of a FormatError, whose message (from kmz.format,
    which sees only bytes) cannot say which file it is about."""

    @functools.wraps(run)
    def wrapper(args):
        try:
            return run(args)
        except errors.FormatError as e:
            raise type(e)(f"{args.input}: {e}") from None

    return wrapper


@_naming_input
def _decode(args):
    output = args.output or args.input.with_suffix(".png")
    io.check_output(output, inputs=[args.input], force=args.force)
    image = frombytes(io.read_bytes(args.input), args.verify_checksum, args.max_pixels)
    image.save(output)
    print(f"{output}: {image.width}x{image.height}, K={image.k}, {output.stat().st_size:,} bytes")


def _sweep(args):
    folder = args.output_dir or args.input.parent
    sheet_path = folder / f"{args.input.stem}-sweep-sheet.png"
    chart_path = folder / f"{args.input.stem}-sweep-chart.png"
    plot = sweep.chart_available()
    for path in (sheet_path, chart_path) if plot else (sheet_path,):
        io.check_output(path, inputs=[args.input], force=args.force)
    io.make_folder(folder)
    with Progress(quiet=args.quiet) as progress:
        progress(f"reading {args.input}")
        pixels, _ = io.open_image(args.input)
        input_bytes = args.input.stat().st_size
        rows = sweep.sweep(pixels, args.k, seed=args.seed, input_bytes=input_bytes, progress=progress)
        progress("drawing the contact sheet")
        io.save_pil(sheet_path, sweep.contact_sheet(pixels, rows))
        if plot:
            progress("drawing the chart")
            figure = sweep.chart(rows, title=f"{args.input.name}: size and quality against K")
            io.write_atomic(chart_path, lambda f: figure.savefig(f, format="png"))
    height, width = pixels.shape[:2]
    print(f"{args.input}: {width}x{height}, {input_bytes:,} bytes; raw 24-bit {3 * width * height:,} bytes\n")
    print(sweep.table(rows) + "\n")
    print(f"{sheet_path}: contact sheet, the original and {len(rows)} K values")
    if plot:
        print(f"{chart_path}: chart of bytes and PSNR against K")
    else:
        print("kmz: note: install kmz[plot] for the chart", file=sys.stderr)


def _batch(args):
    # Imported here, so the other commands do not load the batch machinery.
    from tqdm import tqdm

    from . import batch

    if args.decode and (args.k is not None or args.seed is not None):
        args.usage_error("-k and --seed apply to encoding; --decode takes neither")
    if args.scheduler and args.workers:
        args.usage_error("--workers is for the local pool; a Dask cluster has its own workers")
    plan = batch.plan(args.sources, args.output, decode=args.decode, force=args.force)
    given = {name: value for name, value in [("k", args.k), ("seed", args.seed)] if value is not None}
    job = batch.Job(decode=args.decode, **given)

    def report(record):
        if record["status"] == "failed" and not args.quiet:
            tqdm.write(f"kmz: failed: {record['error']}", file=sys.stderr)

    summary = batch.run(
        plan,
        job,
        manifest=args.manifest or args.output / batch.MANIFEST_NAME,
        workers=args.workers,
        scheduler=args.scheduler,
        chunk_size=args.chunk_size,
        progress=not args.quiet and sys.stderr.isatty(),
        on_record=report,
    )
    print(summary)
    if summary.failed:
        total = summary.done + summary.failed
        raise KmzError(f"{summary.failed:,} of {total:,} files tried failed (see {summary.manifest})")


def describe(data, verify_checksum=True, max_pixels=fmt.PACKAGE_LIMIT):
    """The header fields and the size breakdown of a .kmz file, as a dict."""
    header = fmt.decode(data, verify_checksum, max_pixels)[0]
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
        "index_bytes": len(data) - fmt.OVERHEAD - header.channels * k,
        "formula_bytes": header.file_size,
        "file_bytes": len(data),
        "raw_rgb_bytes": 3 * n,
    }


@_naming_input
def _info(args):
    info = describe(io.read_bytes(args.input), args.verify_checksum, args.max_pixels)
    if args.json:
        print(json.dumps(info, indent=2))
        return
    formula_bits = info["palette_bits"] + info["index_bits"]
    entry_bits = info["palette_bits"] // info["k"]
    ratio = info["file_bytes"] / info["raw_rgb_bytes"]
    print(
        f"{args.input}: kmz version {info['version']}, coding {info['coding']}\n"
        f"  size            {info['width']} x {info['height']} = {info['width'] * info['height']:,} pixels\n"
        f"  palette         K = {info['k']}, {info['bits_per_index']} bits per index\n"
        f"  channels        {info['channels']} ({entry_bits // 8} bytes per palette entry)\n"
        f"  palette bits    {entry_bits}K = {info['palette_bits']:,}\n"
        f"  index bits      N*b = {info['index_bits']:,}\n"
        f"  formula         {entry_bits}K + N*b = {formula_bits:,} bits"
        f" (+ {info['padding_bits']} padding bits)\n"
        f"  index data      {info['index_bytes']:,} bytes, coding {info['coding']}\n"
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
        args = _parser().parse_args(argv)
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
    except MemoryError:  # reachable only past the pixel limit (--no-limit)
        print("kmz: error: out of memory", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kmz: interrupted", file=sys.stderr)
        return 130
    return 0
