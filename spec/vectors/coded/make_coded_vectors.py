"""Regenerate the test vectors of coding 1 (spec/CODING.md section 8), here, and of
coding 2 (spec/CODING2.md), in mix/.

    python spec/vectors/coded/make_coded_vectors.py    (from the project root)

Both codings code the same images. Good vectors: NAME.kmz, NAME.txt (header, palette,
indices row by row), NAME.png. Bad vectors: bad/DEFECT.kmz, each breaking one rule of
CODING.md section 6 (CODING2.md section 7 for coding 2), with the checksum made valid
so that the rule itself is what a decoder trips on. Coding 2's model may still change:
rerun this after each change to it (tests/test_vectors.py fails until then).
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

FOLDERS = {"ctx": ".", "mix": "mix"}  # each coding's vectors, under this folder
SPECS = {"ctx": "spec/CODING.md section 6", "mix": "spec/CODING2.md section 7"}
PIXELS_PER_BYTE = {"ctx": fmt.CTX_PIXELS_PER_BYTE, "mix": fmt.MIX_PIXELS_PER_BYTE}


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
    # Two lines of text in three 5 x 5 glyphs, rows wider than coding 2's 32-pixel match
    # context: repeats that its match model finds again.
    glyphs = rng.integers(0, 2, (3, 5, 5)).astype(np.uint16)
    lines = [np.hstack([np.pad(glyphs[g], ((1, 0), (0, 1))) for g in rng.integers(0, 3, 7)]) for _ in range(2)]
    vectors["glyphs-k2"] = (palette3[[0, 2]], np.vstack(lines))
    # Noise over 300 colours: 9 bits a pixel in coding 2, past the first 256 tree nodes.
    palette300 = rng.integers(0, 256, (300, 3)).astype(np.uint8)
    vectors["noise-k300"] = (palette300, rng.integers(0, 300, (4, 9)).astype(np.uint16))
    # Shading over 130 colours with noise, B = 8: coding 2's up step and its pair cells.
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:10, 0:20]
    shading = (x * 5 + y * 3 + rng.integers(0, 4, (10, 20))) % 130
    vectors["shading-k130"] = (rng.integers(0, 256, (130, 3)).astype(np.uint8), shading.astype(np.uint16))
    return vectors


def _with_payload(data, payload):
    """The file `data` with its payload replaced and its checksum made valid."""
    body = data[: fmt.HEADER_SIZE + fmt.read_header(data).palette_size] + payload
    return body + struct.pack(">I", zlib.crc32(body))


def _with_header(data, **fields):
    """The file `data` with header fields replaced and its checksum made valid."""
    names = ["signature", "version", "coding", "flags", "width", "height", "k_minus_1", "bits", "reserved"]
    values = dict(zip(names, struct.unpack(">8sBBHIIHBB", data[:24])))
    values.update(fields)
    body = struct.pack(">8sBBHIIHBB", *(values[n] for n in names)) + data[24:-4]
    return body + struct.pack(">I", zlib.crc32(body))


def _bad(good, coding):
    """DEFECT -> (file bytes, error name, rule) for `good`, the good vectors of `coding`."""
    edges, rgba = good["edges-k5"], good["noise-k12-rgba"]
    payload = edges[24 + fmt.read_header(edges).palette_size : -4]
    number = fmt.coding_id(coding)
    one = fmt.encode(fmt.Header(1, 1, 1, number), np.zeros((1, 3), np.uint8), np.zeros(1))
    if coding == "ctx":
        out_of_range = {
            "rank-out-of-range": (
                _with_payload(one, b"\x00\x80\x00\x00\x00"), "IndexRangeError",
                "13: an escape with K = 1 (its rank 0 is not below K - n = 0)",
            ),
        }
    else:
        # A code of 0 decodes every decision as 0, whatever the model: a black palette,
        # "not the left pixel" at the first pixel, and with K = 1 (B = 1) the tree's one
        # bit is then forced to 1: index 1, not below K.
        out_of_range = {
            "index-out-of-range": (
                _with_payload(one, bytes(13)), "IndexRangeError",
                "13: every index is below K (K = 1: not the left pixel leaves index 1)",
            ),
        }
    return {
        "payload-bad-start": (_with_payload(edges, b"\x01" + payload[1:]), "PayloadError", "11: byte 0 is 0"),
        "payload-code-all-ones": (
            _with_payload(edges, b"\x00\xff\xff\xff\xff" + payload[5:]), "PayloadError",
            "11: bytes 1-4 are not all 0xFF",
        ),
        "payload-short": (_with_payload(edges, payload[:-1]), "LengthError", "12: no read past the end"),
        "payload-trailing": (_with_payload(edges, payload + b"\x00"), "LengthError", "14: every byte read"),
        "payload-four-bytes": (_with_payload(edges, payload[:4]), "LengthError", "9: P >= 5"),
        **out_of_range,
        "k-above-4096": (
            _with_header(one, k_minus_1=4096, bits=13), "HeaderError", f"4: coding {number} needs K <= 4096",
        ),
        "too-many-pixels": (
            _with_header(one, width=8192, height=8192), "LengthError",
            f"9: W*H <= 2^{PIXELS_PER_BYTE[coding].bit_length() - 1} * P",
        ),
        "rgba-payload-short": (
            _with_payload(rgba, rgba[24 + fmt.read_header(rgba).palette_size : -5]), "LengthError",
            "12: no read past the end (an RGBA palette of 4-byte entries)",
        ),
    }


def _describe(name, data):
    header, palette, indices = fmt.decode(data)
    lines = [
        f"# {name}.kmz: coding {header.coding} ({fmt.CODINGS[header.coding]}), {len(data)} bytes",
        f"width {header.width}",
        f"height {header.height}",
        f"k {header.k}",
        f"bits_per_index {header.bits_per_index}",
        f"payload_bytes {len(data) - fmt.OVERHEAD - header.palette_size}",
        *(["flags 1 (RGBA palette)"] if header.alpha else []),
        "palette (index: R,G,B,A)" if header.alpha else "palette (index: R,G,B)",
        *(f"{i}: " + ",".join(map(str, entry)) for i, entry in enumerate(palette.tolist())),
        "indices (one image row per line)",
        *(" ".join(str(v) for v in row) for row in indices.tolist()),
    ]
    return "\n".join(lines) + "\n"


def _write(folder, coding):
    """The good and bad vectors of `coding` into `folder`."""
    bad_dir = folder / "bad"
    bad_dir.mkdir(parents=True, exist_ok=True)
    good = {}
    for name, (palette, indices) in _good().items():
        image = KmzImage(palette, indices, coding=coding)
        data = image.tobytes()
        good[name] = data
        (folder / f"{name}.kmz").write_bytes(data)
        (folder / f"{name}.txt").write_text(_describe(name, data))
        image.to_pil().save(folder / f"{name}.png")
    rows = []
    for defect, (data, error, rule) in _bad(good, coding).items():
        (bad_dir / f"{defect}.kmz").write_bytes(data)
        rows.append(f"| {defect}.kmz | {error} | {rule} |")
    number = fmt.coding_id(coding)
    (bad_dir / "README.md").write_text(
        f"# Invalid coding-{number} files\n\n"
        f"Each file breaks one check of {SPECS[coding]} (its checksum is valid);\n"
        "a decoder must reject it with the error named here.\n\n"
        "| file | error | check broken |\n|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def main(out=HERE):
    """Every vector, into `out` (this folder, or another to compare with it)."""
    for coding, folder in FOLDERS.items():
        _write(Path(out) / folder, coding)


if __name__ == "__main__":
    main()
