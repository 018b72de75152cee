"""Coding 1 ("ctx"): the indices coded with a 2-D adaptive context model and a binary
range coder (spec/CODING.md). Pure: indices (H, W) + palette -> payload bytes and back.

A pixel usually equals one of its neighbours (left, up, up-right, up-left), so each is
coded as a choice among the distinct neighbours, by adaptive binary decisions in a
context made of the neighbours' equality pattern, of two farther pixels and of how many
neighbours were themselves escapes. A pixel equal to none of them (an escape) is coded
as its rank among the palette entries sorted by colour distance to the left
neighbour's colour (for RGBA, by the composite distance), the neighbours left out: an
adaptive Elias-gamma code.

Every context depends on the pixels decoded before it, so the loop is sequential by
nature: it is C (kmz/_native/ctx.c, module kmz._ctx), run with the GIL released. All
arithmetic is integer, hence deterministic. This module checks arguments and turns the
coder's statuses into kmz's errors.
"""

import numpy as np

from . import _ctx
from .errors import IndexRangeError, LengthError, PayloadError

MAX_K = 4096  # the rank tables are K x K (spec/CODING.md 2)

# Pixels decoded per call: the image grows by chunks as the payload proves to hold
# them, so a short payload declaring a huge image is refused before it is allocated.
CHUNK = 1 << 22

# Statuses of the decoder (kmz/_native/ctx.h), turned into exceptions by decode().
_OK, _TRUNCATED, _TRAILING, _BAD_START, _RANK = range(5)


def _palette(palette):
    """The palette as the coder takes it: (K, 3) bytes, or (K, 4) for RGBA (escapes then
    rank by the composite distance, spec/CODING.md 4.3), K from 1 to MAX_K."""
    palette = np.ascontiguousarray(palette, dtype=np.uint8)
    k = len(palette)
    if not 1 <= k <= MAX_K:
        raise ValueError(f"coding ctx supports K from 1 to {MAX_K}, not {k}")
    if palette.ndim != 2 or palette.shape[1] not in (3, 4):
        raise ValueError("palette must be (K, 3) or (K, 4)")
    return palette


def encode(indices, palette):
    """The coding-1 payload of `indices` (H, W), each below K = len(palette) <= MAX_K."""
    indices = np.asarray(indices)
    if indices.ndim != 2 or indices.size == 0:
        raise ValueError("indices must be a non-empty (H, W) array")
    if indices.min() < 0 or indices.max() >= len(palette):
        raise ValueError(f"indices must be in range 0..{len(palette) - 1}")
    return _ctx.encode(np.ascontiguousarray(indices, dtype=np.uint16), _palette(palette))


def decode(payload, palette, width, height, progress=None):
    """The indices (H, W) uint16 of a coding-1 payload; raises a FormatError subclass
    when the payload is malformed (spec/CODING.md 6). `progress`, if given, is called
    with (pixels done, pixels in all) after every CHUNK pixels and at the end."""
    total = width * height
    decoder = _ctx.Decoder(payload, _palette(palette), width, height)
    indices = np.empty(min(total, CHUNK), dtype=np.uint16)
    done = 0
    while done < total:
        end = min(done + CHUNK, total)
        if end > len(indices):
            # In place where the allocator can (realloc); no view of it is alive.
            indices.resize(min(2 * len(indices), total), refcheck=False)
        status, pixel = decoder.decode(indices[done:end])
        if status != _OK:
            _raise(status, pixel, width, len(palette))
        done = end
        if progress is not None:
            progress(done, total)
    return indices.reshape(height, width)


def _raise(status, pixel, width, k):
    """The FormatError of a decoder status (spec/CODING.md 6) found at `pixel`."""
    where = f"({pixel % width}, {pixel // width})"
    if status == _TRUNCATED:
        raise LengthError(f"truncated: the coded index data ends before pixel {where}")
    if status == _TRAILING:
        raise LengthError("trailing bytes: the coded index data goes on after the last pixel")
    if status == _BAD_START:
        raise PayloadError("the coded index data has an illegal start (spec/CODING.md 5.1)")
    raise IndexRangeError(f"escape rank at pixel {where} is out of range for K = {k}")
