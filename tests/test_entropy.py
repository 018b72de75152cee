"""Coding 1 ("ctx"): round trips, vectors, malformed payloads, fuzzing, API and CLI."""

import re
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kmz
from kmz import _coding, entropy
from kmz import format as fmt
from kmz.errors import (
    ChecksumError,
    FormatError,
    HeaderError,
    IndexRangeError,
    KmzError,
    LengthError,
    PayloadError,
)
from kmz.io import read_image

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "spec" / "vectors" / "coded"
CORPUS = ROOT.parent / "shared" / "corpus"


def ctx_file(indices, palette):
    indices = np.asarray(indices)
    header = fmt.Header(indices.shape[1], indices.shape[0], len(palette), fmt.CODING_CTX, alpha=palette.shape[1] == 4)
    return fmt.encode(header, palette, indices)


def with_payload(data, payload):
    """`data` with its payload replaced and a valid checksum."""
    k = struct.unpack(">H", data[20:22])[0] + 1
    body = data[: fmt.HEADER_SIZE + 3 * k] + payload
    return body + struct.pack(">I", zlib.crc32(body))


def random_palette(k, seed=0, channels=3):
    return np.random.default_rng(seed).integers(0, 256, (k, channels)).astype(np.uint8)


def smooth_indices(height, width, k, seed=0, noise=0.3):
    """Blobs with noisy edges: candidate hits and escapes."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    field = np.sin(x / 5.0 + seed) + np.cos(y / 7.0) + noise * rng.standard_normal((height, width))
    levels = (field - field.min()) / (np.ptp(field) + 1e-9)
    return np.minimum((levels * k).astype(np.int64), k - 1)


@pytest.mark.parametrize("k", [1, 2, 10, 256, 4096])
def test_palette_order_is_the_specified_one(k):
    """Encoder and decoder share the order, so a round trip cannot catch a wrong one:
    check it against spec/CODING.md 4.3 directly, duplicates (ties) included."""
    palette = (np.random.default_rng(k).integers(0, 8, (k, 3)) * 36).astype(np.uint8)  # many equal colours
    order = np.empty(k, np.uint16)
    for ref in sorted({0, k // 3, k - 1}):
        _coding.order(palette, ref, order)
        distance = ((palette.astype(np.int64) - palette[ref]) ** 2).sum(axis=1)
        expected = np.lexsort((np.arange(k), distance))  # by distance, then by index
        assert order.tolist() == expected.tolist()


@pytest.mark.parametrize("k", [1, 2, 3, 5, 16, 64, 256, 257, 1000, 4096])
def test_round_trip_many_k(k):
    palette = random_palette(k, seed=k)
    rng = np.random.default_rng(k)
    for indices in (smooth_indices(23, 31, k, seed=k), rng.integers(0, k, (19, 17))):
        data = ctx_file(indices, palette)
        header, decoded_palette, decoded = fmt.decode(data)
        assert header.coding == fmt.CODING_CTX
        assert np.array_equal(decoded_palette, palette)
        assert np.array_equal(decoded, indices)


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (1, 57), (57, 1), (2, 2), (3, 1000)])
@pytest.mark.parametrize("k", [1, 2, 7, 300])
def test_round_trip_edge_sizes(shape, k):
    indices = np.random.default_rng(1).integers(0, k, shape)
    palette = random_palette(k, seed=2)
    assert np.array_equal(entropy.decode(entropy.encode(indices, palette), palette, shape[1], shape[0]), indices)


def test_encode_rejects_misuse():
    with pytest.raises(ValueError, match="range 0..4"):
        entropy.encode(np.array([[0, 5]]), random_palette(5))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        entropy.encode(np.zeros(4, np.int64), random_palette(5))
    with pytest.raises(ValueError, match="K from 1 to 4096"):
        entropy.encode(np.zeros((2, 2), np.int64), random_palette(4097))


def test_duplicate_palette_entries_round_trip():
    # Equal colours tie in the distance order; ties go by index (spec/CODING.md 4.3).
    palette = np.array([[9, 9, 9]] * 4 + [[200, 0, 0]] * 3, np.uint8)
    indices = np.random.default_rng(3).integers(0, 7, (20, 20))
    assert np.array_equal(fmt.decode(ctx_file(indices, palette))[2], indices)


def test_deterministic_and_compressive():
    palette = np.repeat(np.arange(0, 256, 4, dtype=np.uint8), 3).reshape(64, 3)  # a grey ramp
    indices = smooth_indices(64, 96, 64, noise=0.01)
    first, second = ctx_file(indices, palette), ctx_file(indices, palette)
    assert first == second
    # Smooth indices over an ordered palette come out far below the raw formula's size.
    assert len(first) < 0.5 * fmt.file_size(96, 64, 64)


@pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus not present")
def test_real_image_smaller_than_raw_and_lzma():
    import lzma

    pixels = read_image(CORPUS / "kodak" / "kodim03.png")[128:384, 256:512]
    image = kmz.encode(pixels, k=64, coding="ctx")
    data = image.tobytes()
    assert data[9] == fmt.CODING_CTX
    decoded = kmz.frombytes(data)
    assert decoded.coding == "ctx"
    assert np.array_equal(decoded.indices, image.indices)
    lzma_size = len(lzma.compress(image.indices.astype(np.uint8).tobytes(), preset=9))
    # Measured on this crop: 11,161 bytes (1.36 bits per pixel), 23% of raw, 0.76x lzma.
    assert len(data) < 0.3 * fmt.file_size(image.width, image.height, 64)
    assert len(data) < 0.85 * lzma_size


def test_every_prefix_raises_format_error():
    data = ctx_file(smooth_indices(9, 11, 5), random_palette(5))
    for end in range(len(data)):
        with pytest.raises(FormatError):
            fmt.decode(data[:end])


def test_every_payload_prefix_with_valid_checksum_is_truncated():
    data = ctx_file(smooth_indices(9, 11, 5), random_palette(5))
    payload = data[24 + 15 : -4]
    for end in range(len(payload)):
        with pytest.raises(LengthError, match="truncated"):
            fmt.decode(with_payload(data, payload[:end]))


def test_trailing_payload_byte():
    data = ctx_file(smooth_indices(9, 11, 5), random_palette(5))
    with pytest.raises(LengthError, match="trailing bytes"):
        fmt.decode(with_payload(data, data[24 + 15 : -4] + b"\x00"))


def test_illegal_start():
    data = ctx_file(smooth_indices(9, 11, 5), random_palette(5))
    payload = data[24 + 15 : -4]
    with pytest.raises(PayloadError, match="illegal start"):
        fmt.decode(with_payload(data, b"\x01" + payload[1:]))
    with pytest.raises(PayloadError, match="illegal start"):
        fmt.decode(with_payload(data, b"\x00\xff\xff\xff\xff" + payload[5:]))


def test_escape_rank_out_of_range_names_the_pixel():
    # K = 1: the first decision coded as "not candidate 0" is an escape with no rank left.
    one = ctx_file(np.zeros((1, 1)), np.zeros((1, 3), np.uint8))
    with pytest.raises(IndexRangeError, match=r"pixel \(0, 0\).*K = 1"):
        fmt.decode(with_payload(one, b"\x00\x80\x00\x00\x00"))


def test_checksum_still_checked():
    data = bytearray(ctx_file(smooth_indices(9, 11, 5), random_palette(5)))
    data[-6] ^= 0x10
    with pytest.raises(ChecksumError):
        fmt.decode(bytes(data))


def test_header_rules():
    one = ctx_file(np.zeros((1, 1)), np.zeros((1, 3), np.uint8))
    body = bytearray(one[:-4])
    body[20:23] = struct.pack(">HB", 4096, 13)  # K = 4097
    with pytest.raises(HeaderError, match="up to 4096"):
        fmt.decode(bytes(body) + struct.pack(">I", zlib.crc32(body)))
    with pytest.raises(ValueError, match="up to 4096"):
        fmt.Header(1, 1, 4097, fmt.CODING_CTX)


def test_allocation_bounded():
    # A 37-byte file declaring 8192 x 8192 pixels (within the pixel limit) is refused
    # before anything is allocated.
    body = bytearray(ctx_file(np.zeros((1, 1)), np.zeros((1, 3), np.uint8))[:-4])
    body[12:20] = struct.pack(">II", 8192, 8192)
    with pytest.raises(LengthError, match="cannot hold"):
        fmt.decode(bytes(body) + struct.pack(">I", zlib.crc32(body)))
    # The bound is 2^19 pixels per payload byte: a constant image stays far below it.
    data = ctx_file(np.zeros((512, 1024)), np.zeros((1, 3), np.uint8))
    payload = len(data) - fmt.OVERHEAD - 3
    assert 512 * 1024 < fmt.CTX_PIXELS_PER_BYTE * payload



def test_short_payload_declaring_a_huge_image_is_refused_in_little_memory():
    # 342 zero bytes (a 373-byte file at K = 2) hold about 3 M pixels of index 0, then run
    # out: the 500 M pixels declared (1 GB of indices) must not be allocated to find that.
    # tracemalloc sees numpy's allocations, the peak resident size the C coder's too.
    script = textwrap.dedent(
        """
        import resource
        import tracemalloc
        import numpy as np
        from kmz import entropy
        from kmz.errors import LengthError

        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        try:
            entropy.decode(bytes(342), np.zeros((2, 3), np.uint8), 25000, 20000)
        except LengthError as error:
            print(error)
        print(tracemalloc.get_traced_memory()[1] // 1024)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
        """
    )
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    message, traced_kib, resident_kib = run.stdout.splitlines()
    assert re.fullmatch(r"truncated: the coded index data ends before pixel \(\d+, \d+\)", message), run.stderr
    # Measured: 8 MB traced (the first chunk), 6 MB resident; 1.5 GB and 550 MB when the
    # whole image was allocated first.
    assert int(traced_kib) < 32 * 1024
    assert int(resident_kib) < 64 * 1024


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_decoding_in_chunks(monkeypatch, chunk):
    # Chunks end mid-row, so the decoder's kept rows and coder state carry across calls.
    palette = random_palette(40)
    indices = smooth_indices(13, 17, 40)
    payload = entropy.encode(indices, palette)
    whole = entropy.decode(payload, palette, 17, 13)
    damaged = payload[: len(payload) // 2]
    with pytest.raises(LengthError) as one_call:
        entropy.decode(damaged, palette, 17, 13)
    monkeypatch.setattr(entropy, "CHUNK", chunk)
    calls = []
    assert np.array_equal(entropy.decode(payload, palette, 17, 13, progress=lambda *a: calls.append(a)), whole)
    assert np.array_equal(whole, indices)
    done = [min(n * chunk, 13 * 17) for n in range(1, -(-13 * 17 // chunk) + 1)]
    assert calls == [(n, 13 * 17) for n in done]
    with pytest.raises(LengthError) as chunked:
        entropy.decode(damaged, palette, 17, 13)
    assert str(chunked.value) == str(one_call.value)

def test_vectors_good():
    names = sorted(p.stem for p in VECTORS.glob("*.kmz"))
    assert len(names) >= 6
    for name in names:
        data = (VECTORS / f"{name}.kmz").read_bytes()
        text = (VECTORS / f"{name}.txt").read_text().splitlines()
        fields = dict(line.split(" ", 1) for line in text[1:6])
        width, height, k = int(fields["width"]), int(fields["height"]), int(fields["k"])
        title = next(line for line in text if line.startswith("palette (index: "))
        palette_start = text.index(title) + 1
        palette = [list(map(int, line.split(": ")[1].split(","))) for line in text[palette_start : palette_start + k]]
        rows = text[text.index("indices (one image row per line)") + 1 :]
        expected = np.array([list(map(int, row.split())) for row in rows])
        header, decoded_palette, indices = fmt.decode(data)
        assert (header.width, header.height, header.k, header.coding) == (width, height, k, 1)
        assert decoded_palette.tolist() == palette
        assert np.array_equal(indices, expected)
        # An encoder following spec/CODING.md 5.3 writes the same bytes.
        assert ctx_file(expected, np.array(palette, np.uint8)) == data


def test_vectors_bad():
    readme = (VECTORS / "bad" / "README.md").read_text()
    expected = dict(re.findall(r"^\| (\S+\.kmz) \| (\w+) \|", readme, re.M))
    assert len(expected) >= 8
    for name, error in expected.items():
        with pytest.raises(FormatError) as info:
            fmt.decode((VECTORS / "bad" / name).read_bytes())
        assert type(info.value).__name__ == error, name


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_fuzz_mutated_payloads_raise_only_kmz_errors(data):
    k = data.draw(st.sampled_from([1, 2, 5, 40, 300]))
    width, height = data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12))
    indices = np.random.default_rng(data.draw(st.integers(0, 99))).integers(0, k, (height, width))
    channels = data.draw(st.sampled_from([3, 4]))  # RGB or RGBA palette
    good = bytearray(ctx_file(indices, random_palette(k, channels=channels)))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(24 + channels * k, len(good) - 1))
        good[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, 3))
    mutated = bytes(good[: len(good) - cut] if cut else good)
    try:
        header, _, decoded = fmt.decode(mutated, verify_checksum=False)
    except KmzError:
        return
    assert decoded.shape == (header.height, header.width)
    assert int(decoded.max()) < header.k


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=0, max_size=60), st.integers(1, 300))
def test_fuzz_random_payloads(payload, k):
    one = ctx_file(np.zeros((3, 4)), random_palette(k))
    try:
        fmt.decode(with_payload(one, payload))
    except KmzError:
        pass


def test_image_coding_attribute():
    palette = random_palette(5)
    indices = smooth_indices(10, 12, 5)
    image = kmz.KmzImage(palette, indices)
    assert image.coding == "raw"
    assert len(image.tobytes()) == fmt.file_size(12, 10, 5)
    image.coding = "ctx"
    data = image.tobytes()
    assert data[9] == 1 and kmz.frombytes(data).coding == "ctx"
    assert kmz.frombytes(kmz.KmzImage(palette, indices).tobytes()).coding == "raw"
    with pytest.raises(ValueError, match="unknown coding 'zip'"):
        image.coding = "zip"
    with pytest.raises(ValueError, match="up to 4096"):
        kmz.encode(np.zeros((2, 2, 3), np.uint8), k=5000, coding="ctx")


def test_cli_coding(tmp_path, monkeypatch, capsys):
    from PIL import Image

    from kmz.cli import main

    monkeypatch.chdir(tmp_path)
    y, x = np.mgrid[0:40, 0:60]
    pixels = np.stack([x * 4, y * 6, (x + y) * 2], axis=2).astype(np.uint8)
    Image.fromarray(pixels).save("in.png")
    assert main(["encode", "in.png", "-k", "8", "--coding", "ctx", "-o", "c.kmz"]) == 0
    assert "coding ctx (raw: 952 bytes)" in capsys.readouterr().out  # 28 + 3*8 + 2400*3/8
    data = (tmp_path / "c.kmz").read_bytes()
    assert data[9] == 1 and len(data) < 952
    assert main(["info", "c.kmz"]) == 0
    out = capsys.readouterr().out
    assert "coding ctx" in out
    assert f"952 bytes by the formula (raw coding), {len(data):,} bytes on disk" in out
    assert main(["encode", "in.png", "-k", "5000", "--coding", "ctx", "-o", "d.kmz"]) == 2
    assert "--coding ctx supports K up to 4096" in capsys.readouterr().err
    assert not (tmp_path / "d.kmz").exists()
