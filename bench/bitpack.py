"""Bit-packing speed: `python bench/bitpack.py` prints a Markdown table.

For every width 1-16, packs and unpacks 12 million random indices and reports the
median MB/s over several runs, counting the input as one byte per index (12 million
indices = 12 MB), against the target of 300 MB/s both ways. The indices are uint16,
the dtype kmz passes (quantizer labels and KmzImage.indices). A last line gives the
speed of bitarray doing the same bit by bit (encode/decode with a code table) at one
width, for comparison. The machine may be shared: rerun, and trust medians, not a run.
"""

import argparse
import statistics
import time

import numpy as np
from bitarray import bitarray

import common

common.use_this_clone()
from kmz.bitpack import MAX_BITS, pack, unpack  # noqa: E402

TARGET = 300  # MB/s, both directions


def seconds(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(count, bits, runs, rng):
    """Median MB/s of pack and unpack at `bits`, after checking one round trip."""
    indices = rng.integers(0, 1 << bits, count, dtype=np.uint16)
    data = pack(indices, bits)
    if not np.array_equal(unpack(data, bits, count), indices):
        raise SystemExit(f"round trip failed at {bits} bits")
    pack_times, unpack_times = [], []
    for _ in range(runs):  # interleaved, so a burst of load hits both alike
        pack_times.append(seconds(lambda: pack(indices, bits)))
        unpack_times.append(seconds(lambda: unpack(data, bits, count)))
    mb = count / 1e6
    return mb / statistics.median(pack_times), mb / statistics.median(unpack_times)


def bitarray_speed(count, bits, rng):
    """MB/s of bitarray packing and unpacking bit by bit through a code table."""
    values = rng.integers(0, 1 << bits, count).tolist()
    codes = {v: bitarray(format(v, f"0{bits}b")) for v in range(1 << bits)}

    def encode():
        stream = bitarray(endian="big")
        stream.encode(codes, values)
        return stream.tobytes()

    data = encode()

    def decode():
        stream = bitarray(endian="big")
        stream.frombytes(data)
        return list(stream[: count * bits].decode(codes))  # bitarray 3 decodes lazily

    mb = count / 1e6
    return mb / seconds(encode), mb / seconds(decode)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=12_000_000, help="indices per run (default: 12,000,000)")
    parser.add_argument("--runs", type=int, default=7, help="runs per width, the median quoted (default: 7)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(2)
    print(f"{args.count:,} uint16 indices, median of {args.runs} runs, MB/s at one byte per index\n")
    print(f"| bits | pack MB/s | unpack MB/s | >= {TARGET} MB/s |")
    print("|---:|---:|---:|:---:|")
    slowest = float("inf")
    for bits in range(1, MAX_BITS + 1):
        pack_speed, unpack_speed = measure(args.count, bits, args.runs, rng)
        slowest = min(slowest, pack_speed, unpack_speed)
        met = "yes" if min(pack_speed, unpack_speed) >= TARGET else "NO"
        print(f"| {bits} | {pack_speed:.0f} | {unpack_speed:.0f} | {met} |", flush=True)
    ref_count, ref_bits = 1_000_000, 6
    ref_pack, ref_unpack = bitarray_speed(ref_count, ref_bits, rng)
    print(f"\nSlowest: {slowest:.0f} MB/s; target {'met' if slowest >= TARGET else 'NOT met'}.")
    print(
        f"bitarray bit by bit (encode/decode, {ref_bits} bits, {ref_count:,} indices): "
        f"{ref_pack:.0f} MB/s pack, {ref_unpack:.0f} MB/s unpack."
    )


if __name__ == "__main__":
    main()
