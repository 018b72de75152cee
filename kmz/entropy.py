"""The coded index data: coding 1 ("ctx", spec/CODING.md) and coding 2 ("mix",
spec/CODING2.md). Pure: indices (H, W) + palette -> payload bytes and back.

Coding 1: a pixel usually equals one of its neighbours (left, up, up-right, up-left), so
each is coded as a choice among the distinct neighbours, by adaptive binary decisions in
a context made of the neighbours' equality pattern, of two farther pixels and of how
many neighbours were themselves escapes. A pixel equal to none of them (an escape) is coded
as its rank among the palette entries sorted by colour distance to the left
neighbour's colour (for RGBA, by the composite distance), the neighbours left out: an
adaptive Elias-gamma code.

Coding 2: the payload holds the palette too, coded as differences from entry to entry,
in an order the encoder chooses (a path from colour to nearest colour, or brightness),
so that neighbouring indices are neighbouring colours. Each pixel is then asked "is it
the left neighbour?" (and, at 7 or 8 bits an index, "the one above?"); if not, its
index is coded bit by bit from the most significant. Each decision's probability is a
logistic mix of up to seven context models over the neighbours and a 2-D match model
that follows the last place where the same surroundings occurred (repeated text and
widgets), and the mixer learns which to trust.

In both, every context depends on the pixels decoded before it, so the loop is
sequential by nature: it is C (kmz/_native/ctx.c and mix.c, module kmz._coding), run
with the GIL released. All arithmetic is integer, hence deterministic. This module
checks arguments and turns the coder's statuses into kmz's errors.
"""

import numpy as np

from . import _coding
from .errors import IndexRangeError, LengthError, PayloadError

MAX_K = 4096  # both codings (spec/CODING.md 2, spec/CODING2.md 2)
CODINGS = {"ctx": 1, "mix": 2}  # the header's coding numbers

# Pixels decoded per call: the image grows by chunks as the payload proves to hold
# them, so a short payload declaring a huge image is refused before it is allocated.
CHUNK = 1 << 22

# Statuses of the decoders (kmz/_native/ctx.h and mix.h), turned into exceptions by
# decode(). _RANGE is coding 1's escape rank or coding 2's index past the palette.
_OK, _TRUNCATED, _TRAILING, _BAD_START, _RANGE = range(5)


def _number(coding):
    if coding not in CODINGS:
        raise ValueError(f"unknown coding {coding!r}; coded index data is {' or '.join(CODINGS)}")
    return CODINGS[coding]


def _palette(palette, coding):
    """The palette as the coder takes it: (K, 3) bytes, or (K, 4) for RGBA (the alpha
    counts in coding 1's escape ranks and coding 2's order), K from 1 to MAX_K."""
    palette = np.ascontiguousarray(palette, dtype=np.uint8)
    k = len(palette)
    if not 1 <= k <= MAX_K:
        raise ValueError(f"coding {coding} supports K from 1 to {MAX_K}, not {k}")
    if palette.ndim != 2 or palette.shape[1] not in (3, 4):
        raise ValueError("palette must be (K, 3) or (K, 4)")
    return palette


def encode(indices, palette, coding="ctx"):
    """The payload of `indices` (H, W), each below K = len(palette) <= MAX_K, in
    `coding` ("ctx" or "mix"). A mix payload holds the palette too, reordered, with
    the indices to match: decode() gives back the same pixels, not the same indices."""
    number = _number(coding)
    indices = np.asarray(indices)
    if indices.ndim != 2 or indices.size == 0:
        raise ValueError("indices must be a non-empty (H, W) array")
    if indices.min() < 0 or indices.max() >= len(palette):
        raise ValueError(f"indices must be in range 0..{len(palette) - 1}")
    return _coding.encode(np.ascontiguousarray(indices, dtype=np.uint16), _palette(palette, coding), number)


def decode(payload, palette, width, height, progress=None, coding="ctx"):
    """(palette, indices (H, W) uint16) of a payload in `coding`. `palette` is the
    file's palette for ctx, given back as it is; for mix, whose payload holds it, the
    pair (K, C) of its shape. Raises a FormatError subclass when the payload is
    malformed (spec/CODING.md 6, spec/CODING2.md 7). `progress`, if given, is called with
    (pixels done, pixels in all) after every CHUNK pixels and at the end."""
    total = width * height
    if coding == "mix":
        decoder, palette = _mix_palette(payload, palette, width, height)
    else:
        palette = _palette(palette, coding)
        decoder = _coding.Decoder(payload, palette, width, height, _number(coding))
    indices = np.empty(min(total, CHUNK), dtype=np.uint16)
    done = 0
    while done < total:
        end = min(done + CHUNK, total)
        if end > len(indices):
            # In place where the allocator can (realloc); no view of it is alive.
            indices.resize(min(2 * len(indices), total), refcheck=False)
        # The whole image so far: coding 2 reads back anywhere in it.
        status, pixel = decoder.decode(indices[:end])
        if status != _OK:
            _raise(status, pixel, width, len(palette), coding)
        done = end
        if progress is not None:
            progress(done, total)
    return palette, indices.reshape(height, width)


def decode_palette(payload, shape, width, height):
    """The palette, (K, C) uint8, at the start of a mix payload, decoding no pixel: any
    prefix of the payload that holds the coded palette is enough (spec/CODING2.md 3.2),
    so a reader can have it without reading the rest. `shape` is (K, C). Raises
    LengthError when `payload` ends before the palette does, PayloadError for a start
    no encoder writes."""
    return _mix_palette(payload, shape, width, height)[1]


def _mix_palette(payload, shape, width, height):
    """(a mix decoder past the palette, the palette) of a payload."""
    if not (isinstance(shape, tuple) and len(shape) == 2):
        raise ValueError("a mix payload holds its palette: give its shape (K, C), not a palette")
    decoder = _coding.Decoder(payload, shape, width, height, CODINGS["mix"])
    status, entries = decoder.palette()
    if status != _OK:
        _raise(status, None, width, shape[0], "mix")
    return decoder, np.frombuffer(entries, dtype=np.uint8).reshape(shape)


def _raise(status, pixel, width, k, coding):
    """The FormatError of a decoder status (spec/CODING.md 6, spec/CODING2.md 7) found
    at `pixel`, or in coding 2's palette when it is None."""
    where = "the palette is complete" if pixel is None else f"pixel ({pixel % width}, {pixel // width})"
    if status == _TRUNCATED:
        raise LengthError(f"truncated: the coded data ends before {where}")
    if status == _TRAILING:
        raise LengthError("trailing bytes: the coded data goes on after the last pixel")
    if status == _BAD_START:
        raise PayloadError("the coded data has an illegal start (spec/CODING.md 5.1)")
    what = "escape rank" if coding == "ctx" else "index"
    raise IndexRangeError(f"{what} at {where} is out of range for K = {k}")
