"""The kmz command: a thin layer over the library.

main(argv) returns the exit status: 0 success, 1 a bad file or failed operation,
2 bad usage. KmzError becomes one line on stderr, here and nowhere else.
"""

import argparse
import json
import sys
from pathlib import Path

from . import format as fmt
from . import io
from .errors import KmzError
from .image import encode, frombytes, psnr


def _k(text):
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"K must be a whole number, not {text!r}") from None
    if not 1 <= k <= fmt.MAX_K:
        raise argparse.ArgumentTypeError(f"K must be between 1 and {fmt.MAX_K}, not {k}")
    return k


def _parser():
    parser = argparse.ArgumentParser(prog="kmz", description="k-means colour quantization image codec")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("encode", help="encode an image as .kmz")
    p.add_argument("input", type=Path, help="any image Pillow can read")
    p.add_argument("-o", "--output", type=Path, help="output path (default: INPUT with suffix .kmz)")
    p.add_argument("-k", type=_k, default=64, help="palette size K, 1 to 65536 (default: 64)")
    p.add_argument("--seed", type=int, default=0, help="random seed for k-means (default: 0)")
    p.add_argument("--space", choices=("rgb", "oklab"), default="rgb",
                   help="colour space k-means measures distance in (default: rgb)")
    p.add_argument("--dither", action="store_true", help="Floyd-Steinberg error diffusion (K <= 256)")
    p.add_argument("--force", action="store_true", help="replace an existing output")
    p.set_defaults(run=_encode)

    p = commands.add_parser("decode", help="decode a .kmz file to PNG")
    p.add_argument("input", type=Path, help="a .kmz file")
    p.add_argument("-o", "--output", type=Path, help="output path (default: INPUT with suffix .png)")
    p.add_argument("--force", action="store_true", help="replace an existing output")
    p.set_defaults(run=_decode)

    p = commands.add_parser("info", help="explain a .kmz file: header and size breakdown")
    p.add_argument("input", type=Path, help="a .kmz file")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(run=_info)
    return parser


def _encode(args):
    output = args.output or args.input.with_suffix(".kmz")
    if args.dither and args.k > 256:
        raise KmzError(f"--dither needs K <= 256, not {args.k}")
    io.check_output(output, inputs=[args.input], force=args.force)
    pixels = io.read_image(args.input)
    image = encode(pixels, k=args.k, seed=args.seed, space=args.space, dither=args.dither)
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


def _decode(args):
    output = args.output or args.input.with_suffix(".png")
    io.check_output(output, inputs=[args.input], force=args.force)
    image = frombytes(io.read_bytes(args.input))
    image.save(output)
    print(f"{output}: {image.width}x{image.height}, K={image.k}, {output.stat().st_size:,} bytes")


def describe(data):
    """The header fields and the size breakdown of a .kmz file, as a dict."""
    header = fmt.decode(data)[0]
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


def _info(args):
    info = describe(io.read_bytes(args.input))
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


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        args.run(args)
    except KmzError as e:
        print(f"kmz: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kmz: interrupted", file=sys.stderr)
        return 130
    return 0
