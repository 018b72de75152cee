"""A sweep over K: one image encoded at several K, each measured, then shown as a
table, a chart (matplotlib, an optional extra) and a contact sheet (Pillow only).

Computes and draws; the command line decides where the pictures go.
"""

import math
import time
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from . import checks
from . import format as fmt
from .image import KmzImage, encode
from .quantize import MAX_K

DEFAULT_KS = (2, 4, 8, 16, 32, 64, 128, 256)
TILE = 320  # the contact sheet shrinks larger images to fit TILE x TILE; never enlarges
LABEL_LINES = 2
FONT_SIZE = 14


@dataclass(frozen=True)
class SweepRow:
    k: int  # the K asked for (image.k is smaller when the image has fewer colours)
    image: KmzImage
    kmz_bytes: int
    psnr: float  # dB
    seconds: float  # encode time: quantizing, then packing or coding the indices
    input_bytes: int | None  # the input file's size, when it is a file

    @property
    def pixel_count(self):
        return self.image.width * self.image.height

    @property
    def bits_per_pixel(self):
        return 8 * self.kmz_bytes / self.pixel_count

    @property
    def ratio_to_input(self):
        return self.kmz_bytes / self.input_bytes if self.input_bytes else None

    @property
    def ratio_to_raw(self):
        return self.kmz_bytes / (3 * self.pixel_count)


def sweep(pixels, ks=DEFAULT_KS, seed=0, input_bytes=None, progress=None, coding="raw",
          max_pixels=fmt.PACKAGE_LIMIT):
    """Encode pixels ((H, W, 3) or RGBA (H, W, 4) uint8) at each K in ks, the indices coded
    as `coding` says ("raw", "ctx" or "mix"); a SweepRow for each. max_pixels is the
    pixel limit, as kmz.encode takes it."""
    ks = [checks.whole("k", k, 1, MAX_K) for k in ks]
    if not ks:
        raise ValueError("ks must name at least one K")
    fmt.check_coded_k(coding, max(ks))  # before the slow work, not when encode reaches that K
    if input_bytes is not None:
        checks.whole("input_bytes", input_bytes, 0)
    rows = []
    for number, k in enumerate(ks, 1):
        if progress:
            progress(f"quantizing K={k} ({number} of {len(ks)})")
        start = time.perf_counter()
        # The limit is checked (and warned of) once, not at every K.
        limit = max_pixels if number == 1 else None
        image = encode(pixels, k=k, seed=seed, coding=coding, max_pixels=limit)
        data = image.tobytes()
        seconds = time.perf_counter() - start
        rows.append(SweepRow(k, image, len(data), image.psnr, seconds, input_bytes))
    return rows


def table(rows):
    """The rows as a Markdown table."""
    lines = [
        "| K | .kmz bytes | bits/pixel | of input | of raw 24-bit | PSNR dB | encode s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        k = f"{row.k}" if row.image.k == row.k else f"{row.k} ({row.image.k} used)"
        of_input = "n/a" if row.ratio_to_input is None else f"{row.ratio_to_input:.1%}"
        lines.append(
            f"| {k} | {row.kmz_bytes:,} | {row.bits_per_pixel:.3f} | {of_input} "
            f"| {row.ratio_to_raw:.1%} | {row.psnr:.2f} | {row.seconds:.2f} |"
        )
    return "\n".join(lines)


def chart_available():
    """Whether matplotlib, needed only for the chart, can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def chart(rows, title=""):
    """A matplotlib Figure: .kmz bytes and PSNR against K (log2 axis), with the input
    file's size marked. Raises ImportError without matplotlib."""
    # Figure and the Agg canvas directly: no pyplot, so no global state or GUI backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    ks = [row.k for row in rows]
    axes.plot(ks, [row.kmz_bytes for row in rows], "o-", color="tab:blue", label=".kmz bytes")
    input_bytes = rows[0].input_bytes if rows else None
    if input_bytes:
        axes.axhline(input_bytes, color="tab:blue", linestyle="--", linewidth=1,
                     label=f"input file: {input_bytes:,} bytes")
    axes.set_xscale("log", base=2)
    axes.set_xticks(ks, [str(k) for k in ks])
    axes.set_xlabel("K (palette size)")
    axes.set_ylabel("bytes", color="tab:blue")
    axes.set_ylim(0, 1.1 * max([row.kmz_bytes for row in rows] + [input_bytes or 0]))
    axes.yaxis.set_major_formatter("{x:,.0f}")
    quality = axes.twinx()
    quality.plot(ks, [row.psnr for row in rows], "s-", color="tab:red", label="PSNR")
    quality.set_ylabel("PSNR (dB)", color="tab:red")
    lines = axes.get_legend_handles_labels()
    more = quality.get_legend_handles_labels()
    axes.legend(lines[0] + more[0], lines[1] + more[1], loc="lower right")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    return figure


def _thumbnail(image):
    image = image.convert("RGBA")  # pasted with its alpha as the mask: shown over the sheet's white
    if image.width > TILE or image.height > TILE:
        image.thumbnail((TILE, TILE), Image.Resampling.LANCZOS)
    return image


def contact_sheet(original, rows):
    """A PIL image: the original ((H, W, 3) or (H, W, 4) uint8) then each row's decoded image, in a
    grid, each labelled (the original with its file size; each K with bytes and PSNR)."""
    font = ImageFont.load_default(size=FONT_SIZE)
    input_bytes = rows[0].input_bytes if rows else None
    tiles = [(_thumbnail(Image.fromarray(original)), ["original", f"{input_bytes:,} bytes" if input_bytes else ""])]
    for row in rows:
        tiles.append((
            _thumbnail(row.image.to_pil()),
            [f"K={row.k}: {row.kmz_bytes:,} bytes", f"PSNR {row.psnr:.2f} dB"],
        ))
    columns = math.ceil(math.sqrt(len(tiles)))
    gap, line = 8, FONT_SIZE + 4
    cell_w = max(tile.width for tile, _ in tiles)
    cell_h = max(tile.height for tile, _ in tiles) + LABEL_LINES * line
    rows_count = math.ceil(len(tiles) / columns)
    sheet = Image.new("RGB", (gap + columns * (cell_w + gap), gap + rows_count * (cell_h + gap)), "white")
    draw = ImageDraw.Draw(sheet)
    for number, (tile, label) in enumerate(tiles):
        x = gap + (number % columns) * (cell_w + gap)
        y = gap + (number // columns) * (cell_h + gap)
        sheet.paste(tile, (x, y), tile)
        for i, text in enumerate(label):
            draw.text((x, y + tile.height + 2 + i * line), text, fill="black", font=font)
    return sheet
