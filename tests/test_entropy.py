"""The coded index data, codings 1 ("ctx") and 2 ("mix"): round trips, malformed
payloads, fuzzing, API and CLI. Most tests run for both codings; coding 2's bytes
change with its model, so no test holds a coding-2 size or byte, only properties.

Coding 2's payload holds the palette, in an order its encoder chooses, with the indices
to match: a mix round trip gives back the same pixels (palette[indices]) and the same
palette entries, not the same palette order and indices; raw and ctx give back both."""

import json
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
CORPUS = ROOT.parent / "shared" / "corpus"
CODED = ["ctx", "mix"]
PIXELS_PER_BYTE = {"ctx": fmt.CTX_PIXELS_PER_BYTE, "mix": fmt.MIX_PIXELS_PER_BYTE}
# What IndexRangeError names: coding 1 ranks an escape, coding 2 codes an index.
OUT_OF_RANGE = {"ctx": "escape rank", "mix": "index"}


def coded_file(indices, palette, coding):
    indices = np.asarray(indices)
    header = fmt.Header(indices.shape[1], indices.shape[0], len(palette), fmt.coding_id(coding),
                        alpha=palette.shape[1] == 4)
    return fmt.encode(header, palette, indices)


def payload_of(data):
    """The payload of a coded file: after the raw palette (ctx), or right after the
    header (mix, whose payload holds the palette)."""
    return data[fmt.HEADER_SIZE + fmt.read_header(data).palette_size : -4]


def with_payload(data, payload):
    """`data` with its payload replaced and a valid checksum."""
    body = data[: fmt.HEADER_SIZE + fmt.read_header(data).palette_size] + payload
    return body + struct.pack(">I", zlib.crc32(body))


def shape_or_palette(palette, coding):
    """What entropy.decode is given: the palette for ctx, its shape (K, C) for mix."""
    return palette.shape if coding == "mix" else palette


def assert_same_image(coding, palette, indices, decoded_palette, decoded):
    """A decoded palette and indices hold the image encoded: for raw and ctx the very
    palette and indices; for mix the same pixels, its palette a permutation of the one
    given (the same entries, duplicates included, as many times)."""
    palette, indices = np.asarray(palette), np.asarray(indices)
    assert decoded.shape == indices.shape and decoded_palette.shape == palette.shape
    if coding != "mix":
        assert np.array_equal(decoded_palette, palette)
        assert np.array_equal(decoded, indices)
        return
    assert sorted(map(tuple, decoded_palette.tolist())) == sorted(map(tuple, palette.tolist()))
    assert int(decoded.max()) < len(palette)
    assert np.array_equal(decoded_palette[decoded], palette[indices])


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


@pytest.mark.parametrize("coding", CODED)
@pytest.mark.parametrize("k", [1, 2, 3, 5, 16, 17, 64, 256, 257, 1000, 4096])
def test_round_trip_many_k(coding, k):
    palette = random_palette(k, seed=k)
    rng = np.random.default_rng(k)
    for indices in (smooth_indices(23, 31, k, seed=k), rng.integers(0, k, (19, 17))):
        data = coded_file(indices, palette, coding)
        header, decoded_palette, decoded = fmt.decode(data)
        assert header.coding == fmt.coding_id(coding)
        assert_same_image(coding, palette, indices, decoded_palette, decoded)


@pytest.mark.parametrize("coding", CODED)
@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (1, 57), (57, 1), (2, 2), (3, 1000)])
@pytest.mark.parametrize("k", [1, 2, 7, 300])
def test_round_trip_edge_sizes(coding, shape, k):
    indices = np.random.default_rng(1).integers(0, k, shape)
    palette = random_palette(k, seed=2)
    payload = entropy.encode(indices, palette, coding)
    decoded_palette, decoded = entropy.decode(payload, shape_or_palette(palette, coding), shape[1], shape[0],
                                              coding=coding)
    assert decoded.dtype == np.uint16 and decoded_palette.dtype == np.uint8
    assert_same_image(coding, palette, indices, decoded_palette, decoded)
    if coding == "ctx":
        assert decoded_palette is palette  # given back as it is


@pytest.mark.parametrize("coding", CODED)
@pytest.mark.parametrize("k", [1, 2, 3, 17, 256])
def test_rgba_palettes_round_trip(coding, k):
    # Half the entries fully transparent, in different colours: they tie in ctx's palette
    # order (composite distance) and in mix's choice of the darkest entry (brightness
    # times alpha), ties going by index; each keeps its colour.
    palette = random_palette(k, seed=k, channels=4)
    palette[: k // 2, 3] = 0
    indices = smooth_indices(15, 21, k, seed=k)
    header, decoded_palette, decoded = fmt.decode(coded_file(indices, palette, coding))
    assert header.alpha
    assert_same_image(coding, palette, indices, decoded_palette, decoded)


@pytest.mark.parametrize("coding", CODED)
def test_encode_rejects_misuse(coding):
    with pytest.raises(ValueError, match="range 0..4"):
        entropy.encode(np.array([[0, 5]]), random_palette(5), coding)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        entropy.encode(np.zeros(4, np.int64), random_palette(5), coding)
    with pytest.raises(ValueError, match=f"coding {coding} supports K from 1 to 4096"):
        entropy.encode(np.zeros((2, 2), np.int64), random_palette(4097), coding)


def test_unknown_coding_is_misuse():
    with pytest.raises(ValueError, match="unknown coding 'zip'"):
        entropy.encode(np.zeros((2, 2), np.int64), random_palette(5), "zip")
    with pytest.raises(ValueError, match="unknown coding 'raw'"):
        entropy.decode(bytes(5), random_palette(5), 2, 2, coding="raw")


@pytest.mark.parametrize("coding", CODED)
def test_duplicate_palette_entries_round_trip(coding):
    # Equal colours tie in the palette orders; ties go by index (spec/CODING.md 4.3,
    # spec/CODING2.md).
    palette = np.array([[9, 9, 9]] * 4 + [[200, 0, 0]] * 3, np.uint8)
    indices = np.random.default_rng(3).integers(0, 7, (20, 20))
    _, decoded_palette, decoded = fmt.decode(coded_file(indices, palette, coding))
    assert_same_image(coding, palette, indices, decoded_palette, decoded)


def test_mix_file_holds_no_raw_palette_and_codes_a_structured_one_small():
    # 256 greys in a shuffled order: the encoder walks them darkest first, one grey
    # level at a time, so the coded palette costs far less than its 768 raw bytes.
    rng = np.random.default_rng(7)
    palette = np.repeat(np.arange(256, dtype=np.uint8), 3).reshape(256, 3)[rng.permutation(256)]
    indices = np.arange(256).reshape(16, 16)  # every entry once
    data = coded_file(indices, palette, "mix")
    header = fmt.read_header(data)
    assert (header.coding, header.palette_size) == (fmt.CODING_MIX, 0)
    payload = entropy.encode(indices, palette, "mix")
    assert len(data) == fmt.OVERHEAD + len(payload) and data[24:-4] == payload  # header, payload, CRC-32
    assert data[-4:] == struct.pack(">I", zlib.crc32(data[:-4]))
    # The whole file, 256 pixels of 8 bits among them, is smaller than the header and a
    # raw palette alone; a 1 x 1 image's file is little more than the coded palette.
    assert len(data) < 24 + 3 * 256
    assert len(coded_file(indices[:1, :1], palette, "mix")) < 28 + 3 * 256 // 8
    # ctx and raw keep the raw palette after the header.
    for coding in ("raw", "ctx"):
        other = coded_file(indices, palette, coding)
        assert fmt.read_header(other).palette_size == 3 * 256 and other[24 : 24 + 768] == palette.tobytes()
    _, decoded_palette, decoded = fmt.decode(data)
    assert_same_image("mix", palette, indices, decoded_palette, decoded)
    assert decoded_palette[:, 0].tolist() == list(range(256))  # the path: darkest, then the nearest grey


@pytest.mark.parametrize("channels", [3, 4])
def test_mix_payload_cut_inside_the_palette_is_truncated(channels):
    palette = random_palette(256, seed=8, channels=channels)  # random colours: many payload bytes
    indices = smooth_indices(9, 11, 256)
    data = coded_file(indices, palette, "mix")
    payload = payload_of(data)
    for end in (5, 6, 50, 200):  # 5: the range coder's start, and not one entry
        message = "^truncated: the coded data ends before the palette is complete$"
        with pytest.raises(LengthError, match=message):
            fmt.decode(with_payload(data, payload[:end]))
        with pytest.raises(LengthError, match=message):
            entropy.decode(payload[:end], (256, channels), 11, 9, coding="mix")
        status, entries = _coding.Decoder(payload[:end], (256, channels), 11, 9, 2).palette()
        assert (status, entries) == (1, None)  # KMZ_MIX_TRUNCATED


def test_mix_decode_takes_the_palette_shape_not_a_palette():
    palette = random_palette(5)
    indices = smooth_indices(9, 11, 5)
    payload = entropy.encode(indices, palette, "mix")
    for wrong in (palette, palette.tolist(), [5, 3], np.array([5, 3])):
        with pytest.raises(ValueError, match=r"give its shape \(K, C\), not a palette"):
            entropy.decode(payload, wrong, 11, 9, coding="mix")
    for wrong in (palette, (5, 2), (0, 3), (4097, 3)):
        with pytest.raises(ValueError, match="coding 2 is given the palette's shape"):
            _coding.Decoder(payload, wrong, 11, 9, 2)
    decoded_palette, decoded = entropy.decode(payload, palette.shape, 11, 9, coding="mix")
    assert_same_image("mix", palette, indices, decoded_palette, decoded)
    # ctx still takes the palette, and keeps it out of its payload.
    ctx = _coding.Decoder(entropy.encode(indices, palette, "ctx"), palette, 11, 9, 1)
    with pytest.raises(RuntimeError, match="coding 1 keeps the palette out of its payload"):
        ctx.palette()


def test_mix_low_level_decoder_gives_the_palette_then_the_pixels():
    palette = random_palette(40, seed=9, channels=4)
    indices = smooth_indices(13, 17, 40)
    payload = entropy.encode(indices, palette, "mix")
    expected_palette, expected = entropy.decode(payload, (40, 4), 17, 13, coding="mix")
    for palette_first in (True, False):
        decoder = _coding.Decoder(payload, (40, 4), 17, 13, 2)
        if palette_first:
            status, entries = decoder.palette()
            assert status == 0 and entries == expected_palette.tobytes()
        image = np.zeros(13 * 17, np.uint16)
        assert decoder.decode(image) == (0, 13 * 17)  # decodes the palette first when not asked yet
        assert np.array_equal(image.reshape(13, 17), expected)
        assert decoder.palette() == (0, expected_palette.tobytes())


@pytest.mark.parametrize("k", [2, 9, 40])
def test_mix_rgba_palette_with_clear_and_duplicate_entries_keeps_the_pixels(k):
    # Clear entries of different colours (alpha 0, so all of brightness 0), exact
    # duplicates, clear and opaque: the encoder's path may take any of the equals, the
    # pixels must come back, each clear one in its own colour.
    palette = random_palette(k, seed=k, channels=4)
    palette[: k // 2 + 1, 3] = 0
    palette[k // 2 + 1 :, 3] = 255
    palette[-1] = palette[0]  # a clear duplicate
    if k > 2:
        palette[1] = palette[0] + [0, 0, 0, 0]  # another clear copy
        palette[-2] = palette[k // 2 + 1]  # an opaque duplicate
    rng = np.random.default_rng(k)
    for indices in (smooth_indices(15, 21, k, seed=k), rng.integers(0, k, (7, 40))):
        image = kmz.KmzImage(palette, indices, "mix")
        decoded = kmz.frombytes(image.tobytes())
        assert decoded.coding == "mix" and decoded.channels == 4
        assert_same_image("mix", palette, indices, decoded.palette, decoded.indices)
        assert np.array_equal(decoded.to_array(), image.to_array())
        assert np.array_equal(kmz.frombytes(decoded.tobytes()).to_array(), image.to_array())  # and once more


@pytest.mark.parametrize("coding", CODED)
def test_deterministic_and_compressive(coding):
    palette = np.repeat(np.arange(0, 256, 4, dtype=np.uint8), 3).reshape(64, 3)  # a grey ramp
    indices = smooth_indices(64, 96, 64, noise=0.01)
    first, second = coded_file(indices, palette, coding), coded_file(indices, palette, coding)
    assert first == second
    # Smooth indices over an ordered palette come out far below the raw formula's size.
    assert len(first) < 0.5 * fmt.file_size(96, 64, 64)


@pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus not present")
@pytest.mark.parametrize("coding", CODED)
def test_real_image_smaller_than_raw_and_lzma(coding):
    import lzma

    pixels = read_image(CORPUS / "kodak" / "kodim03.png")[128:384, 256:512]
    image = kmz.encode(pixels, k=64, coding=coding)
    data = image.tobytes()
    assert data[9] == fmt.coding_id(coding)
    decoded = kmz.frombytes(data)
    assert decoded.coding == coding
    assert_same_image(coding, image.palette, image.indices, decoded.palette, decoded.indices)
    lzma_size = len(lzma.compress(image.indices.astype(np.uint8).tobytes(), preset=9))
    # Measured on this crop with ctx: 11,161 bytes (1.36 bits per pixel), 23% of raw, 0.76x lzma.
    assert len(data) < 0.3 * fmt.file_size(image.width, image.height, 64)
    assert len(data) < 0.85 * lzma_size
    if coding == "mix":  # what its time buys
        image.coding = "ctx"
        assert len(data) < len(image.tobytes())


@pytest.mark.parametrize("coding", CODED)
def test_every_prefix_raises_format_error(coding):
    data = coded_file(smooth_indices(9, 11, 5), random_palette(5), coding)
    for end in range(len(data)):
        with pytest.raises(FormatError):
            fmt.decode(data[:end])


@pytest.mark.parametrize("coding", CODED)
def test_every_payload_prefix_with_valid_checksum_is_truncated(coding):
    # One error, LengthError, whether the payload is too short to start (fewer than 5
    # bytes) or runs out part way: in mix's palette, or at a pixel.
    data = coded_file(smooth_indices(9, 11, 5), random_palette(5), coding)
    payload = payload_of(data)
    least = {"ctx": 28 + 15 + 5, "mix": 28 + 5}[coding]  # mix: no raw palette
    where = r"pixel \(\d+, \d+\)" + (r"|the palette is complete" if coding == "mix" else "")
    seen = set()
    for end in range(len(payload)):
        with pytest.raises(LengthError, match=rf"^truncated: (file is \d+ bytes, a coded file with K = 5 needs at "
                           rf"least {least}|the coded data ends before ({where}))$") as caught:
            fmt.decode(with_payload(data, payload[:end]))
        message = str(caught.value)
        seen.add("palette" if "palette" in message else "pixel" if "pixel" in message else "short")
    assert seen == ({"short", "palette", "pixel"} if coding == "mix" else {"short", "pixel"})


@pytest.mark.parametrize("coding", CODED)
def test_trailing_payload_byte(coding):
    data = coded_file(smooth_indices(9, 11, 5), random_palette(5), coding)
    for tail in (b"\x00", b"\xff\xff"):
        with pytest.raises(LengthError, match="^trailing bytes: the coded data goes on after the last pixel$"):
            fmt.decode(with_payload(data, payload_of(data) + tail))


@pytest.mark.parametrize("coding", CODED)
def test_illegal_start(coding):
    data = coded_file(smooth_indices(9, 11, 5), random_palette(5), coding)
    payload = payload_of(data)
    with pytest.raises(PayloadError, match="illegal start"):
        fmt.decode(with_payload(data, b"\x01" + payload[1:]))
    with pytest.raises(PayloadError, match="illegal start"):
        fmt.decode(with_payload(data, b"\x00\xff\xff\xff\xff" + payload[5:]))


def test_escape_rank_out_of_range_names_the_pixel():
    # K = 1: the first decision coded as "not candidate 0" is an escape with no rank left.
    one = coded_file(np.zeros((1, 1)), np.zeros((1, 3), np.uint8), "ctx")
    with pytest.raises(IndexRangeError, match=r"pixel \(0, 0\).*K = 1"):
        fmt.decode(with_payload(one, b"\x00\x80\x00\x00\x00"))


@pytest.mark.parametrize("channels", [3, 4])
def test_mix_index_past_the_palette_names_the_pixel(channels):
    # A code of 0 decodes every decision as 0, whatever the model predicts: a palette of
    # one black entry, then "not the left pixel" at the first pixel; with K = 1 (B = 1)
    # the tree's one bit is then forced to the other child: index 1, past the palette.
    data = coded_file(np.zeros((9, 11)), random_palette(1, channels=channels), "mix")
    damaged = with_payload(data, bytes(13))
    with pytest.raises(IndexRangeError, match=r"^index at pixel \(0, 0\) is out of range for K = 1$"):
        fmt.decode(damaged)
    # The palette itself decodes: the error is the pixel's.
    status, palette = _coding.Decoder(payload_of(damaged), (1, channels), 11, 9, 2).palette()
    assert status == 0 and palette == bytes(channels)


def test_mix_damaged_payload_decodes_an_index_past_the_palette():
    # Damaged part way, the decoder goes astray and, K = 3 not being a power of two,
    # soon decodes index 3. Where depends on the model, so a damage is searched for,
    # among the bytes after those the palette needs (a damage there changes colours,
    # which no check can see).
    palette, indices = random_palette(3), smooth_indices(16, 16, 3)
    payload = entropy.encode(indices, palette, "mix")
    after_palette = next(end for end in range(len(payload)) if _coding.Decoder(payload[:end], (3, 3), 16, 16, 2)
                         .palette()[0] == 0)
    assert 5 < after_palette < len(payload)
    for pos in range(after_palette, len(payload)):
        for bit in (0x01, 0x10, 0x80):
            damaged = payload[:pos] + bytes([payload[pos] ^ bit]) + payload[pos + 1 :]
            try:
                entropy.decode(damaged, (3, 3), 16, 16, coding="mix")
            except IndexRangeError as error:
                where = re.fullmatch(r"index at pixel \((\d+), (\d+)\) is out of range for K = 3", str(error))
                assert where and (int(where[1]), int(where[2])) != (0, 0)
                return
            except LengthError:
                pass
    pytest.fail("no damaged payload decoded an index past the palette")


@pytest.mark.parametrize("coding", CODED)
def test_checksum_still_checked(coding):
    data = bytearray(coded_file(smooth_indices(9, 11, 5), random_palette(5), coding))
    data[-6] ^= 0x10
    with pytest.raises(ChecksumError):
        fmt.decode(bytes(data))


@pytest.mark.parametrize("coding", CODED)
def test_header_rules(coding):
    one = coded_file(np.zeros((1, 1)), np.zeros((1, 3), np.uint8), coding)
    body = bytearray(one[:-4])
    body[20:23] = struct.pack(">HB", 4096, 13)  # K = 4097
    with pytest.raises(HeaderError, match=f"^coding {coding} allows K up to 4096, not 4097$"):
        fmt.decode(bytes(body) + struct.pack(">I", zlib.crc32(body)))
    with pytest.raises(ValueError, match=f"coding {coding} supports K up to 4096"):
        fmt.Header(1, 1, 4097, fmt.coding_id(coding))


@pytest.mark.parametrize("coding", CODED)
def test_allocation_bounded(coding):
    # A file of a few payload bytes declaring 8192 x 8192 pixels (within the pixel limit)
    # is refused before anything is allocated.
    body = bytearray(coded_file(np.zeros((1, 1)), np.zeros((1, 3), np.uint8), coding)[:-4])
    body[12:20] = struct.pack(">II", 8192, 8192)
    with pytest.raises(LengthError, match="cannot hold"):
        fmt.decode(bytes(body) + struct.pack(">I", zlib.crc32(body)))
    # A constant image at K = 1 is the densest payload there is, and stays below the bound.
    data = coded_file(np.zeros((512, 1024)), np.zeros((1, 3), np.uint8), coding)
    payload = len(payload_of(data))
    assert 512 * 1024 < PIXELS_PER_BYTE[coding] * payload


@pytest.mark.parametrize("coding", CODED)
def test_short_payload_declaring_a_huge_image_is_refused_in_little_memory(coding):
    # 342 zero bytes (a 373-byte file at K = 2; mix: 370, its palette among them) hold a
    # few million pixels of index 0, then run out: the 500 M pixels declared (1 GB of
    # indices) must not be allocated to find that. tracemalloc sees numpy's allocations,
    # the peak resident size the C coder's too.
    script = textwrap.dedent(
        f"""
        import resource
        import tracemalloc
        import numpy as np
        from kmz import entropy
        from kmz.errors import LengthError

        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        try:
            entropy.decode(bytes(342), {"(2, 3)" if coding == "mix" else "np.zeros((2, 3), np.uint8)"}, 25000, 20000,
                           coding="{coding}")
        except LengthError as error:
            print(error)
        print(tracemalloc.get_traced_memory()[1] // 1024)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
        """
    )
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    message, traced_kib, resident_kib = run.stdout.splitlines()
    assert re.fullmatch(r"truncated: the coded data ends before pixel \(\d+, \d+\)", message), run.stderr
    # Measured: 8 MB traced (the first chunk; mix, whose zeros hold more pixels, 16 MB:
    # two chunks), 6 MB resident (mix 33 MB, its model's tables); 1.5 GB and 550 MB when
    # the whole image was allocated first.
    assert int(traced_kib) < 32 * 1024
    assert int(resident_kib) < 64 * 1024


@pytest.mark.parametrize("coding", CODED)
@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_decoding_in_chunks(monkeypatch, coding, chunk):
    # Chunks end mid-row, so the decoder's kept rows (ctx) or the image so far (mix) and
    # the coder's state carry across calls.
    palette = random_palette(40)
    indices = smooth_indices(13, 17, 40)
    payload = entropy.encode(indices, palette, coding)
    given = shape_or_palette(palette, coding)
    whole_palette, whole = entropy.decode(payload, given, 17, 13, coding=coding)
    damaged = payload[: len(payload) // 2]
    with pytest.raises(LengthError) as one_call:
        entropy.decode(damaged, given, 17, 13, coding=coding)
    assert "pixel" in str(one_call.value)  # half the payload holds the palette and some pixels
    monkeypatch.setattr(entropy, "CHUNK", chunk)
    calls = []
    progress = lambda *a: calls.append(a)  # noqa: E731
    chunked_palette, chunked_indices = entropy.decode(payload, given, 17, 13, progress=progress, coding=coding)
    assert np.array_equal(chunked_palette, whole_palette) and np.array_equal(chunked_indices, whole)
    assert_same_image(coding, palette, indices, whole_palette, whole)
    done = [min(n * chunk, 13 * 17) for n in range(1, -(-13 * 17 // chunk) + 1)]
    assert calls == [(n, 13 * 17) for n in done]
    with pytest.raises(LengthError) as chunked:
        entropy.decode(damaged, given, 17, 13, coding=coding)
    assert str(chunked.value) == str(one_call.value)

@pytest.mark.parametrize("coding", CODED)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_fuzz_mutated_payloads_raise_only_kmz_errors(coding, data):
    k = data.draw(st.sampled_from([1, 2, 5, 40, 300]))
    width, height = data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12))
    indices = np.random.default_rng(data.draw(st.integers(0, 99))).integers(0, k, (height, width))
    channels = data.draw(st.sampled_from([3, 4]))  # RGB or RGBA palette
    good = bytearray(coded_file(indices, random_palette(k, channels=channels), coding))
    for _ in range(data.draw(st.integers(1, 4))):
        # The payload's bytes (for mix, its palette's among them).
        pos = data.draw(st.integers(24 + fmt.read_header(bytes(good)).palette_size, len(good) - 1))
        good[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, 3))
    mutated = bytes(good[: len(good) - cut] if cut else good)
    try:
        header, palette, decoded = fmt.decode(mutated, verify_checksum=False)
    except KmzError:
        return
    assert palette.shape == (header.k, header.channels)
    assert decoded.shape == (header.height, header.width)
    assert int(decoded.max()) < header.k


@pytest.mark.parametrize("coding", CODED)
@settings(max_examples=100, deadline=None)
@given(payload=st.binary(min_size=0, max_size=60), k=st.integers(1, 300))
def test_fuzz_random_payloads(coding, payload, k):
    one = coded_file(np.zeros((3, 4)), random_palette(k), coding)
    try:
        fmt.decode(with_payload(one, payload))
    except KmzError:
        pass


@pytest.mark.parametrize("coding", CODED)
def test_image_coding_attribute(coding):
    palette = random_palette(5)
    indices = smooth_indices(10, 12, 5)
    image = kmz.KmzImage(palette, indices)
    assert image.coding == "raw"
    assert len(image.tobytes()) == fmt.file_size(12, 10, 5)
    image.coding = coding
    data = image.tobytes()
    assert data[9] == fmt.coding_id(coding) and kmz.frombytes(data).coding == coding
    assert kmz.frombytes(kmz.KmzImage(palette, indices).tobytes()).coding == "raw"
    with pytest.raises(ValueError, match="unknown coding 'zip'"):
        image.coding = "zip"
    with pytest.raises(ValueError, match=f"coding {coding} supports K up to 4096, not 5000"):
        kmz.encode(np.zeros((2, 2, 3), np.uint8), k=5000, coding=coding)


@pytest.mark.parametrize("coding", CODED)
def test_cli_coding(tmp_path, monkeypatch, capsys, coding):
    from PIL import Image

    from kmz.cli import main

    monkeypatch.chdir(tmp_path)
    y, x = np.mgrid[0:40, 0:60]
    pixels = np.stack([x * 4, y * 6, (x + y) * 2], axis=2).astype(np.uint8)
    Image.fromarray(pixels).save("in.png")
    assert main(["encode", "in.png", "-k", "8", "--coding", coding, "-o", "c.kmz"]) == 0
    line = capsys.readouterr().out
    assert f"coding {coding} (raw: 952 bytes)" in line  # 28 + 3*8 + 2400*3/8
    assert "would write" not in line  # the hint is for raw files
    data = (tmp_path / "c.kmz").read_bytes()
    assert data[9] == fmt.coding_id(coding) and len(data) < 952
    assert line.startswith(f"c.kmz: {len(data):,} bytes, coding {coding}")
    assert main(["info", "c.kmz"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"c.kmz: kmz version 1, coding {coding}\n")
    assert f"952 bytes by the formula (raw coding), {len(data):,} bytes on disk" in out
    assert main(["info", "--json", "c.kmz"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["coding"], info["file_bytes"]) == (coding, len(data))
    assert main(["encode", "in.png", "-k", "5000", "--coding", coding, "-o", "d.kmz"]) == 2
    assert f"--coding {coding} supports K up to 4096, not 5000" in capsys.readouterr().err
    assert not (tmp_path / "d.kmz").exists()


def test_cli_lists_every_coding_with_its_help(capsys):
    from kmz.cli import main

    assert main(["encode", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--coding {raw,ctx,mix}" in out
    assert all(f"{name} (" in out for name in ("raw", "ctx", "mix"))
