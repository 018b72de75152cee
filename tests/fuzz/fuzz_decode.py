"""Coverage-guided fuzzing of the .kmz decoder, every index coding, with atheris (libFuzzer).

    pip install atheris
    mkdir -p /tmp/kmz-corpus
    python tests/fuzz/fuzz_decode.py /tmp/kmz-corpus tests/fuzz/seeds tests/bad -max_total_time=600

libFuzzer adds the inputs that reach new code to the first folder and reads the others
as seeds: tests/fuzz/seeds/ holds valid files of coding 0 (raw-*), coding 1 (ctx-*) and
coding 2 (mix-*).
Decoding may raise only KmzError; anything else (or a hang, or running out of memory)
is a finding, saved as crash-<sha1> (timeout-, oom-). Add each finding to
tests/bad/make_bad.py so it stays a regression test.

A file that decodes must hold what the encoder would write for its pixels. A raw file
must be byte for byte the encoder's (the format leaves it no freedom). A coded file
(ctx or mix) need not be, since the range coder's last bytes have slack; the encoder's
file for the same header, palette and indices must decode, checksum included, to
exactly them (ctx), or to the same palette entries and pixels (mix, whose encoder
chooses the palette's order).

The checksum is skipped so that mutated files reach the checks behind it; the pixel
limit is 2^20 so that a header declaring a huge K = 1 image (which needs no index
bytes) is refused rather than allocated.
"""

import sys
import warnings
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

# All of kmz's Python is traced; the per-pixel loops are C (kmz._coding, kmz._kmeans),
# which atheris cannot trace.
with atheris.instrument_imports(include=["kmz"]):
    import numpy as np

    from kmz import format as fmt
    from kmz.errors import KmzError, PixelLimitWarning

MAX_PIXELS = 1 << 20


def decode(data, verify_checksum):
    # The pixel limit's warnings recorded and dropped: an "ignore" filter would remember
    # every distinct message in the warnings registry, and memory would grow for the
    # whole run.
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always", PixelLimitWarning)
        return fmt.decode(data, verify_checksum=verify_checksum, max_pixels=MAX_PIXELS)


def test_one_input(data):
    try:
        header, palette, indices = decode(data, verify_checksum=False)
    except KmzError:
        return
    if indices.shape != (header.height, header.width) or int(indices.max()) >= header.k:
        raise AssertionError(f"decoded indices of shape {indices.shape}, largest {indices.max()}, for {header}")
    again = fmt.encode(header, palette, indices)
    if header.coding == fmt.CODING_RAW:
        if again[:-4] != bytes(data[:-4]):
            raise AssertionError("a raw file that decodes does not re-encode to the same bytes")
        return
    header2, palette2, indices2 = decode(again, verify_checksum=True)
    if header.coding == fmt.CODING_MIX:
        # Coding 2's encoder stores the palette in an order of its own choosing, with the
        # indices to match: the same entries and the same pixels.
        same = (sorted(map(tuple, palette2.tolist())) == sorted(map(tuple, palette.tolist()))
                and np.array_equal(palette2[indices2], palette[indices]))
    else:
        same = np.array_equal(palette2, palette) and np.array_equal(indices2, indices)
    if header2 != header or not same:
        raise AssertionError("a coded file that decodes holds other pixels than the encoder's file for them")


def main():
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
