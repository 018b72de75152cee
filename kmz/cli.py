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
from .errors import KmzError, PixelLimitError, PixelLimitWarning
from .image import encode, frombytes, psnr


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line, like every other kmz error; the usage is one --help away.
        self.exit(2, f"kmz: error: {message} (see '{self.prog} --help')\n")


def _input(text):
    path = Path(text)
    if not path.name:  # '.', '/', '': no file, and no name to derive an output from
        raise argparse.ArgumentTypeError(f"{text!r} is not a file")
    return path


def _seed(text):
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be a whole number, not {text!r}") from None
    if not 0 <= seed < 2**32:
        raise argparse.ArgumentTypeError(f"seed must be between 0 and {2**32 - 1}, not {seed}")
    return seed


def _k(text):
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"K must be a whole number, not {text!r}") from None
    if not 1 <= k <= fmt.MAX_K:
        raise argparse.ArgumentTypeError(f"K must be between 1 and {fmt.MAX_K}, not {k}")
    return k


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
    p.add_argument("-k", type=_k, default=64, help="palette size K, 1 to 65536 (default: 64)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed for k-means (default: 0)")
    p.add_argument("--force", action="store_true", help="replace an existing output")
    p.add_argument("--frame", type=_frame, help="the frame of an animation to encode (default: 0, with a note)")
    p.add_argument("--background", type=_colour, default=io.DEFAULT_BACKGROUND,
                   help="colour under transparent pixels: a name or #rrggbb (default: white)")
    _add_limit_options(p, checksum=False)
    p.set_defaults(run=_encode)

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
    return parser


def _encode(args):
    output = args.output or args.input.with_suffix(".kmz")
    io.check_output(output, inputs=[args.input], force=args.force)
    pixels, notes = io.open_image(args.input, args.frame, args.background, args.max_pixels)
    for note in notes:
        print(f"kmz: note: {note}", file=sys.stderr)
    image = encode(pixels, k=args.k, seed=args.seed, max_pixels=None)  # checked by open_image
    data = image.tobytes()
    io.write_bytes(output, data)
    formula_bits = 24 * image.k + image.width * image.height * image.bits_per_index
    quality = psnr(pixels, image.to_array())
    note = "" if image.k == args.k else f" (the image has only {image.k} colours)"
    print(
        f"{output}: {len(data):,} bytes, K={image.k}{note}, {image.bits_per_index} bits per index, "
        f"formula 24K + N*b = {formula_bits:,} bits + {fmt.OVERHEAD} bytes overhead, "
        f"PSNR {quality:.2f} dB"
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
        "palette_bits": 24 * k,
        "index_bits": n * b,
        "padding_bits": 8 * fmt.bitpack.packed_size(n, b) - n * b,
        "overhead_bytes": fmt.OVERHEAD,
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
    ratio = info["file_bytes"] / info["raw_rgb_bytes"]
    print(
        f"{args.input}: kmz version {info['version']}, coding {info['coding']}\n"
        f"  size            {info['width']} x {info['height']} = {info['width'] * info['height']:,} pixels\n"
        f"  palette         K = {info['k']}, {info['bits_per_index']} bits per index\n"
        f"  palette bits    24K = {info['palette_bits']:,}\n"
        f"  index bits      N*b = {info['index_bits']:,}\n"
        f"  formula         24K + N*b = {formula_bits:,} bits"
        f" (+ {info['padding_bits']} padding bits)\n"
        f"  overhead        {info['overhead_bytes']} bytes (24 header + 4 CRC-32)\n"
        f"  total           {info['formula_bytes']:,} bytes by the formula,"
        f" {info['file_bytes']:,} bytes on disk\n"
        f"  raw RGB         24N = {8 * info['raw_rgb_bytes']:,} bits ({info['raw_rgb_bytes']:,} bytes);"
        f" this file is {ratio:.1%} of that"
    )


def _show_warning(message, category, *args, **kwargs):
    print(f"kmz: warning: {message}", file=sys.stderr)


def main(argv=None):
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # bad usage (2) or --help (0): a status to return, as documented
        return e.code
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", PixelLimitWarning)
            warnings.showwarning = _show_warning
            args.run(args)
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
