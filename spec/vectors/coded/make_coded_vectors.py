"""Regenerate the coding-1 test vectors of spec/CODING.md section 8.

    python spec/vectors/coded/make_coded_vectors.py    (from the project root)

Good vectors: NAME.kmz, NAME.txt (header, palette, indices row by row), NAME.png.
Bad vectors: bad/DEFECT.kmz, each breaking one rule of CODING.md section 6, with the
checksum made valid so that the rule itself is what a decoder trips on.
"""

import struct
import sys
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from kmz import format as fmt  # noqa: E402
from kmz.image import KmzImage  # noqa: E402


def _good():
    """name -> (palette, indices): small images that reach every path of the model."""
    rng = np.random.default_rng(6)
    vectors = {"one-pixel": (np.array([[200, 30, 40]], np.uint8), np.zeros((1, 1), np.uint16))}
    # Stripes and a diagonal edge: mostly candidate hits, a few escapes.
    palette = np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 0, 255], [0, 128, 0]], np.uint8)
    y, x = np.mgrid[0:6, 0:8]
    vectors["edges-k5"] = (palette, ((x // 3 + (y > x)) % 5).astype(np.uint16))
    # A single row and a single column, K = 3.
    palette3 = np.array([[10, 10, 10], [120, 120, 120], [250, 250, 250]], np.uint8)
    vectors["row-k3"] = (palette3, (np.arange(17) * 7 % 3).reshape(1, 17).astype(np.uint16))
    vectors["column-k3"] = (palette3, (np.arange(9) % 3).reshape(9, 1).astype(np.uint16))
    # Noise over 40 colours: escapes with large ranks, so the uniform step is used.
    palette40 = rng.integers(0, 256, (40, 3)).astype(np.uint8)
    vectors["noise-k40"] = (palette40, rng.integers(0, 40, (7, 13)).astype(np.uint16))
    # A smooth gradient with duplicate palette entries (ties in the distance order).
    palette_dup = np.repeat(np.arange(0, 256, 32, dtype=np.uint8), 3).reshape(8, 3)
    palette_dup = np.concatenate([palette_dup, palette_dup[:2]])
    ramp = (np.add.outer(np.arange(6), np.arange(10)) // 2 % 10).astype(np.uint16)
    vectors["ramp-duplicates-k10"] = (palette_dup, ramp)
    # RGBA (flags bit 0): escapes ranked by the composite distance, in which the three
    # fully transparent entries (different RGB) tie at 0 and the half-transparent
    # entries sit between them and the opaque ones.
    alphas = np.array([0, 0, 0, 255, 255, 128, 128, 64, 32, 255, 1, 200], np.uint8)
    palette_rgba = np.column_stack([rng.integers(0, 256, (12, 3)).astype(np.uint8), alphas])
    vectors["noise-k12-rgba"] = (palette_rgba, rng.integers(0, 12, (6, 11)).astype(np.uint16))
    return vectors


def _with_payload(data, payload):
    """The file `data` with its payload replaced and its checksum made valid."""
    header = fmt.read_header(data)
    body = data[: fmt.HEADER_SIZE + header.channels * header.k] + payload
    return body + struct.pack(">I", zlib.crc32(body))


def _with_header(data, **fields):
    """The file `data` with header fields replaced and its checksum made valid."""
    names = ["signature", "version", "coding", "flags", "width", "height", "k_minus_1", "bits", "reserved"]
    values = dict(zip(names, struct.unpack(">8sBBHIIHBB", data[:24])))
    values.update(fields)
    body = struct.pack(">8sBBHIIHBB", *(values[n] for n in names)) + data[24:-4]
    return body + struct.pack(">I", zlib.crc32(body))


def _bad(good):
    """DEFECT -> (file bytes, error name, rule)."""
    edges = good["edges-k5"]
    payload = edges[24 + 15 : -4]
    one = fmt.encode(fmt.Header(1, 1, 1, fmt.CODING_CTX), np.zeros((1, 3), np.uint8), np.zeros(1))
    return {
        "payload-bad-start": (_with_payload(edges, b"\x01" + payload[1:]), "PayloadError", "11: byte 0 is 0"),
        "payload-code-all-ones": (
            _with_payload(edges, b"\x00\xff\xff\xff\xff" + payload[5:]), "PayloadError",
            "11: bytes 1-4 are not all 0xFF",
        ),
        "payload-short": (_with_payload(edges, payload[:-1]), "LengthError", "12: no read past the end"),
        "payload-trailing": (_with_payload(edges, payload + b"\x00"), "LengthError", "14: every byte read"),
        "payload-four-bytes": (_with_payload(edges, payload[:4]), "LengthError", "9: P >= 5"),
        "rank-out-of-range": (
            _with_payload(one, b"\x00\x80\x00\x00\x00"), "IndexRangeError",
            "13: an escape with K = 1 (its rank 0 is not below K - n = 0)",
        ),
        "k-above-4096": (
            _with_header(one, k_minus_1=4096, bits=13), "HeaderError", "4: coding 1 needs K <= 4096",
        ),
        "too-many-pixels": (
            _with_header(one, width=8192, height=8192), "LengthError", "9: W*H <= 2^19 * P",
        ),
        "rgba-payload-short": (
            _with_payload(good["noise-k12-rgba"], good["noise-k12-rgba"][24 + 48 : -5]), "LengthError",
            "12: no read past the end (an RGBA palette of 4K bytes)",
        ),
    }


def _describe(name, data):
    header, palette, indices = fmt.decode(data)
    lines = [
        f"# {name}.kmz: coding 1 (ctx), {len(data)} bytes",
        f"width {header.width}",
        f"height {header.height}",
        f"k {header.k}",
        f"bits_per_index {header.bits_per_index}",
        f"payload_bytes {len(data) - fmt.OVERHEAD - header.channels * header.k}",
        *(["flags 1 (RGBA palette)"] if header.alpha else []),
        "palette (index: R,G,B,A)" if header.alpha else "palette (index: R,G,B)",
        *(f"{i}: " + ",".join(map(str, entry)) for i, entry in enumerate(palette.tolist())),
        "indices (one image row per line)",
        *(" ".join(str(v) for v in row) for row in indices.tolist()),
    ]
    return "\n".join(lines) + "\n"


def main():
    good = {}
    for name, (palette, indices) in _good().items():
        image = KmzImage(palette, indices, coding="ctx")
        data = image.tobytes()
        good[name] = data
        (HERE / f"{name}.kmz").write_bytes(data)
        (HERE / f"{name}.txt").write_text(_describe(name, data))
        image.to_pil().save(HERE / f"{name}.png")
    bad_dir = HERE / "bad"
    bad_dir.mkdir(exist_ok=True)
    rows = []
    for defect, (data, error, rule) in _bad(good).items():
        (bad_dir / f"{defect}.kmz").write_bytes(data)
        rows.append(f"| {defect}.kmz | {error} | {rule} |")
    (bad_dir / "README.md").write_text(
        "# Invalid coding-1 files\n\n"
        "Each file breaks one check of spec/CODING.md section 6 (its checksum is valid);\n"
        "a decoder must reject it with the error named here.\n\n"
        "| file | error | check broken |\n|---|---|---|\n" + "\n".join(rows) + "\n"
    )


if __name__ == "__main__":
    main()
