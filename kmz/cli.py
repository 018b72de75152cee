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
from . import sweep
from .errors import KmzError
from .image import DEFAULT_K, encode, frombytes, psnr
from .progress import Progress
from .targets import DEFAULT_MAX_K


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
    p.add_argument("-k", type=_k, help=f"palette size K, 1 to 65536 (default: {DEFAULT_K}); with "
                   f"--psnr or --max-bytes, the largest K searched (default: {DEFAULT_MAX_K})")
    p.add_argument("--seed", type=int, default=0, help="random seed for k-means (default: 0)")
    p.add_argument("--force", action="store_true", help="replace an existing output")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--psnr", type=_positive(float), metavar="DB",
                        help="choose the smallest K whose PSNR reaches DB (a search)")
    target.add_argument("--max-bytes", type=_positive(int), metavar="N",
                        help="choose the largest K whose file fits in N bytes")
    p.add_argument("--strict", action="store_true",
                   help="when the target cannot be met, write nothing and exit 1 "
                   "(default: write the closest K and exit 0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on a terminal")
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

    p = commands.add_parser("sweep", help="encode at several K: a table, a chart and a contact sheet")
    p.add_argument("input", type=Path, help="any image Pillow can read")
    p.add_argument("--k", type=_k_list, default=sweep.DEFAULT_KS, metavar="LIST",
                   help="comma-separated K values (default: %s)" % ",".join(map(str, sweep.DEFAULT_KS)))
    p.add_argument("-o", "--output-dir", type=Path, metavar="DIR",
                   help="folder for NAME-sweep-chart.png and NAME-sweep-sheet.png (default: INPUT's folder)")
    p.add_argument("--seed", type=int, default=0, help="random seed for k-means (default: 0)")
    p.add_argument("--force", action="store_true", help="replace existing outputs")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on a terminal")
    p.set_defaults(run=_sweep)
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
    output = args.output or args.input.with_suffix(".kmz")
    io.check_output(output, inputs=[args.input], force=args.force)
    with Progress(quiet=args.quiet) as progress:
        progress(f"reading {args.input}")
        pixels = io.read_image(args.input)
        image = encode(pixels, k=args.k, seed=args.seed, psnr=args.psnr, max_bytes=args.max_bytes,
                       strict=args.strict, progress=progress)
        progress("packing")
        data = image.tobytes()
        progress(f"writing {output}")
        io.write_bytes(output, data)
    formula_bits = 24 * image.k + image.width * image.height * image.bits_per_index
    quality = psnr(pixels, image.to_array())
    asked = image.target.k if image.target else args.k or DEFAULT_K
    note = "" if image.k == asked else f" (the image has only {image.k} colours)"
    target = f"; {image.target.describe()}" if image.target else ""
    print(
        f"{output}: {len(data):,} bytes, K={image.k}{note}, {image.bits_per_index} bits per index, "
        f"formula 24K + N*b = {formula_bits:,} bits + {fmt.OVERHEAD} bytes overhead, "
        f"PSNR {quality:.2f} dB{target}"
    )


def _decode(args):
    output = args.output or args.input.with_suffix(".png")
    io.check_output(output, inputs=[args.input], force=args.force)
    image = frombytes(io.read_bytes(args.input))
    image.save(output)
    print(f"{output}: {image.width}x{image.height}, K={image.k}, {output.stat().st_size:,} bytes")


def _sweep(args):
    folder = args.output_dir or args.input.parent
    sheet_path = folder / f"{args.input.stem}-sweep-sheet.png"
    chart_path = folder / f"{args.input.stem}-sweep-chart.png"
    plot = sweep.chart_available()
    for path in (sheet_path, chart_path) if plot else (sheet_path,):
        io.check_output(path, inputs=[args.input], force=args.force)
    if not folder.is_dir():
        raise KmzError(f"{folder}: no such folder")
    with Progress(quiet=args.quiet) as progress:
        progress(f"reading {args.input}")
        pixels = io.read_image(args.input)
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
