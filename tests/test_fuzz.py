"""Property-based fuzzing of the decoder: random bytes and mutated valid files.

Only KmzError may escape, a file that decodes re-encodes to the same bytes (a coded
file: to a file of the same pixels), and the decoder never allocates more than the file
could describe. Derandomized, so CI runs
the same examples every time (about 20 s on a loaded 2-core machine); the atheris harness in tests/fuzz/ is for
long runs.
"""

import struct
import tracemalloc
import warnings
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kmz
from kmz import entropy
from kmz import format as fmt

pytestmark = pytest.mark.slow  # thousands of examples: CI runs them with -m slow

MAX_PIXELS = 1 << 16
FUZZ = settings(max_examples=1500, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _valid_files():
    rng = np.random.default_rng(2)
    files = []
    for k, width, height in [(1, 1, 1), (1, 9, 4), (2, 3, 5), (3, 7, 3), (5, 3, 5), (16, 4, 4),
                             (17, 5, 3), (256, 3, 3), (257, 2, 7), (300, 16, 2)]:
        palette = rng.integers(0, 256, (k, 3), dtype=np.uint8)
        indices = rng.integers(0, k, width * height)
        files.append(fmt.encode(fmt.Header(width, height, k), palette, indices))
    # RGBA palettes (flags bit 0, 4-byte entries).
    for k, width, height in [(1, 2, 2), (5, 3, 5), (40, 6, 5)]:
        palette = rng.integers(0, 256, (k, 4), dtype=np.uint8)
        indices = rng.integers(0, k, width * height)
        files.append(fmt.encode(fmt.Header(width, height, k, alpha=True), palette, indices))
    # Both coded codings, RGB and RGBA (test_entropy also fuzzes their payloads alone).
    for coding in (fmt.CODING_CTX, fmt.CODING_MIX):
        for k, width, height, channels in [(1, 3, 2, 3), (2, 9, 4, 3), (5, 3, 5, 4), (17, 5, 3, 3), (300, 16, 2, 3)]:
            palette = rng.integers(0, 256, (k, channels), dtype=np.uint8)
            indices = rng.integers(0, k, width * height)
            files.append(fmt.encode(fmt.Header(width, height, k, coding, alpha=channels == 4), palette, indices))
    return files


VALID = _valid_files()
# (offset, size) of every header field after the signature (spec 3.1).
FIELDS = [(8, 1), (9, 1), (10, 2), (12, 4), (16, 4), (20, 2), (22, 1), (23, 1)]


def _position(draw, data, end=0):
    """A position in data (up to len(data) - 1 + end), the file's part drawn first:
    hypothesis favours small integers, which would put most mutations in the signature."""
    size = len(data) + end
    index_end = max(0, len(data) - 4)
    parts = [(0, 8)] + 3 * [(8, 24), (24, index_end), (index_end - 3, index_end), (index_end, size)]
    low, high = draw(st.sampled_from(parts))
    low, high = max(0, low), min(high, size)
    return draw(st.integers(low, high - 1)) if low < high else draw(st.integers(0, size - 1))


@st.composite
def mutation(draw, data):
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "field", "field", "tail"]))
    if kind == "tail" and len(data) >= 5:
        # Overwrite one of the last index bytes: high bits make indices >= K, low bits padding.
        pos = len(data) - 5 - draw(st.integers(0, min(2, len(data) - 5)))
        return data[:pos] + bytes([draw(st.integers(0, 255))]) + data[pos + 1 :]
    if kind == "flip" and data:
        pos = _position(draw, data)
        return data[:pos] + bytes([data[pos] ^ (1 << draw(st.integers(0, 7)))]) + data[pos + 1 :]
    if kind == "truncate":
        return data[: _position(draw, data, end=1)]
    if kind == "insert":
        pos = _position(draw, data, end=1)
        return data[:pos] + draw(st.binary(min_size=1, max_size=16)) + data[pos:]
    if kind == "delete" and data:
        pos = _position(draw, data)
        return data[:pos] + data[pos + draw(st.integers(1, 16)) :]
    if kind == "field" and len(data) >= fmt.HEADER_SIZE:
        offset, size = draw(st.sampled_from(FIELDS))
        top = (1 << (8 * size)) - 1
        value = draw(st.one_of(st.sampled_from([0, 1, 2, top, top >> 1, (top >> 1) + 1]), st.integers(0, top)))
        return data[:offset] + value.to_bytes(size, "big") + data[offset + size :]
    return data


@st.composite
def mutated_file(draw):
    data = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(1, 3))):
        data = draw(mutation(data))
    if draw(st.booleans()) and len(data) >= 4:
        # Fix the CRC so that the checks behind it are reached with verification on too.
        data = data[:-4] + struct.pack(">I", zlib.crc32(data[:-4]))
    return data


@pytest.fixture(scope="module", autouse=True)
def compiled_decoder_loaded():
    """Decode a coded file before tracemalloc watches: loading the compiled decoder is a
    one-time cost of the process, not an allocation a file causes. (In the default run
    other tests had loaded it; run alone, as with -m slow, this module must.)"""
    fmt.decode(fmt.encode(fmt.Header(2, 2, 3, fmt.CODING_CTX), np.zeros((3, 3), np.uint8), np.zeros(4, int)))


def first_chunk(data):
    """Bytes of the indices a coded file's decoder allocates before its payload has
    proved to hold them: the first chunk (entropy.CHUNK pixels at most, 2 bytes each),
    for a header that check 9 let through, so within what the payload could describe.
    (The coders' own tables are C's, which tracemalloc does not see.)"""
    try:
        header = fmt.read_header(data)
    except kmz.FormatError:
        return 0
    return 0 if header.coding == fmt.CODING_RAW else 2 * min(header.pixel_count, entropy.CHUNK)


def check_decoder(data):
    """Decode with and without checksum verification; return nothing, raise on a violation."""
    for verify in (True, False):
        tracemalloc.start()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", kmz.PixelLimitWarning)
                image = kmz.frombytes(data, verify_checksum=verify, max_pixels=MAX_PIXELS)
        except kmz.KmzError:
            image = None
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        # Refused or not, memory is bounded by the file's length; a decoded image may also
        # hold its indices (2 bytes per pixel: a 31-byte K = 1 file can describe many).
        pixels = 0 if image is None else image.width * image.height
        assert peak <= 64 * len(data) + 4 * pixels + first_chunk(data) + 64 * 1024, (peak, len(data), pixels)
        if image is not None:
            assert image.width * image.height <= 2 * MAX_PIXELS
            if image.coding == "raw":
                assert image.tobytes()[:-4] == bytes(data[:-4])
                if verify:
                    assert image.tobytes() == bytes(data)
            else:
                # The range coder's last bytes have slack, so a coded file need not be the
                # encoder's: the encoder's file for its pixels must hold the same ones. ctx
                # keeps the palette and indices; mix codes the palette in an order of its
                # choosing (a damaged file's palette is in any order), with the indices
                # to match: the same entries and pixels.
                again = kmz.frombytes(image.tobytes(), max_pixels=None)
                assert again.header == image.header
                if image.coding == "ctx":
                    assert np.array_equal(again.palette, image.palette)
                    assert np.array_equal(again.indices, image.indices)
                else:
                    assert sorted(map(tuple, again.palette.tolist())) == sorted(map(tuple, image.palette.tolist()))
                    assert np.array_equal(again.to_array(), image.to_array())


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(lambda b: fmt.SIGNATURE + b)))
def test_random_bytes(data):
    check_decoder(data)


@FUZZ
@given(mutated_file())
def test_mutated_valid_files(data):
    check_decoder(data)


def test_mutations_reach_every_refusal():
    """The mutation strategy is not toothless: it produces every refusal class and successes."""
    seen = set()

    @settings(max_examples=600, deadline=None, derandomize=True, database=None)
    @given(mutated_file())
    def collect(data):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", kmz.PixelLimitWarning)
                kmz.frombytes(data, max_pixels=MAX_PIXELS)
            seen.add("ok")
        except kmz.KmzError as e:
            seen.add(type(e).__name__)

    collect()
    assert seen >= {"ok", "SignatureError", "LengthError", "VersionError", "HeaderError",
                    "ChecksumError", "PaddingError", "IndexRangeError", "PixelLimitError", "PayloadError"}


def _image_files():
    from io import BytesIO

    from PIL import Image

    rng = np.random.default_rng(3)
    image = Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8))
    files = []
    for format, mode in [("PNG", "RGBA"), ("GIF", "P"), ("BMP", "RGB"), ("JPEG", "RGB"), ("TIFF", "CMYK"), ("WEBP", "RGB")]:
        buffer = BytesIO()
        image.convert(mode).save(buffer, format=format)
        files.append(buffer.getvalue())
    buffer = BytesIO()  # real transparency: encoded with an RGBA palette
    Image.fromarray(rng.integers(0, 256, (6, 5, 4), dtype=np.uint8)).save(buffer, format="PNG")
    files.append(buffer.getvalue())
    return files


IMAGES = _image_files()


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's notes on the damage it met
@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.sampled_from(IMAGES).flatmap(lambda data: mutation(data)))
def test_mutated_image_files_give_only_kmz_errors(tmp_path_factory, data):
    """The encoder's side: a corrupt input image is an ImageReadError, never anything else."""
    path = tmp_path_factory.getbasetemp() / "mutated.img"
    path.write_bytes(data)
    try:
        pixels, _ = kmz.io.open_image(path, max_pixels=MAX_PIXELS)
    except kmz.KmzError:
        return
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] in (3, 4)  # RGB, or RGBA
