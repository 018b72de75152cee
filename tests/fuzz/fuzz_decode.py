"""Coverage-guided fuzzing of the .kmz decoder with atheris (libFuzzer).

    mkdir -p /tmp/kmz-corpus
    python tests/fuzz/fuzz_decode.py /tmp/kmz-corpus tests/fuzz/seeds tests/bad -max_total_time=600

libFuzzer adds the inputs that reach new code to the first folder and reads the others
as seeds. Decoding may raise only KmzError; anything else (or a hang, or running out of
memory) is a finding, saved as crash-<sha1> (timeout-, oom-). Add each finding to
tests/bad/make_bad.py so it stays a regression test.

The checksum is skipped so that mutated files reach the checks behind it; the pixel
limit is 2^20 so that a header declaring a huge K = 1 image (which needs no index
bytes) is refused rather than allocated.
"""

import sys
import warnings
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

with atheris.instrument_imports(include=["kmz"]):
    from kmz import bitpack
    from kmz import format as fmt
    from kmz.errors import KmzError, PixelLimitWarning

MAX_PIXELS = 1 << 20


def test_one_input(data):
    try:
        # Recorded and dropped: an "ignore" filter would remember every distinct message
        # in the warnings registry, and memory would grow for the whole run.
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always", PixelLimitWarning)
            header, palette, indices = fmt.decode(data, verify_checksum=False, max_pixels=MAX_PIXELS)
    except KmzError:
        return
    # A file that passes every check but the checksum is exactly what the encoder writes.
    again = fmt.encode(header, palette, indices)
    if again[:-4] != bytes(data[:-4]):
        raise AssertionError("decoded file does not re-encode to the same bytes")
    assert bitpack.packed_size(header.pixel_count, header.bits_per_index) == len(data) - 28 - 3 * header.k


def main():
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
