"""Every vector of spec/vectors: good files decode to the pixels their listing and PNG
hold; bad files raise the error bad/README.md names; regenerating gives the same bytes.
The same for the coded vectors, spec/vectors/coded (coding 1) and coded/mix (coding 2)."""

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kmz
from kmz import errors
from kmz import format as fmt

VECTORS = Path(__file__).resolve().parents[1] / "spec" / "vectors"
GOOD = sorted((VECTORS / "good").glob("*.kmz"))
BAD_README = VECTORS / "bad" / "README.md"
CODED = {"ctx": VECTORS / "coded", "mix": VECTORS / "coded" / "mix"}


def _load(path):
    """A vector script as a module, to run its main() into another folder."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _same_files(made, committed, relatives):
    """Each of `relatives` is the same in both folders (for a PNG, the same pixels: PNG
    bytes depend on the zlib version)."""
    for relative in relatives:
        new, old = made / relative, committed / relative
        if relative.suffix == ".png":
            with Image.open(new) as a, Image.open(old) as b:
                assert a.mode == b.mode and (np.asarray(a.convert("RGBA")) == np.asarray(b.convert("RGBA"))).all()
        else:
            assert new.read_bytes() == old.read_bytes(), relative


def read_listing(path):
    """The fields, palette, indices and pixels a good vector's .txt lists."""
    sections = path.read_text().split("\n\n")
    fields = dict(line.split(" ", 1) for line in sections[1].splitlines()[:5])
    body = {s.split("\n", 1)[0].split(" (")[0]: s.split("\n", 1)[1] for s in sections[2:] if "\n" in s}
    palette = [tuple(map(int, line.split(": ")[1].split(","))) for line in body["palette"].splitlines()]
    indices = [list(map(int, line.split())) for line in body["indices"].splitlines()]
    pixels = [[tuple(map(int, p.split(","))) for p in line.split()] for line in body["pixels"].splitlines()]
    return {k: int(v) for k, v in fields.items()}, palette, indices, np.array(pixels, dtype=np.uint8)


def bad_table():
    """(file name, error class, message) from bad/README.md's table."""
    rows = re.findall(r"^\| `([^`]+)` \| [^|]+ \| (\w+) \| `([^`]+)` \|$", BAD_README.read_text(), re.M)
    return [(name, getattr(errors, error), message) for name, error, message in rows]


def test_the_vectors_cover_what_the_issue_asks():
    fields = [read_listing(p.with_suffix(".txt"))[0] for p in GOOD]
    assert {1, 2, 5, 256, 300} <= {f["K"] for f in fields}
    assert any(f["width"] * f["bits_per_index"] % 8 for f in fields), "no vector whose rows end mid-byte"
    names = {name for name, _, _ in bad_table()}
    for defect in ["bad-signature", "unknown-version", "zero-width", "nonzero-reserved", "index-out-of-range",
                   "truncated", "trailing-bytes", "bad-checksum", "nonzero-padding"]:
        assert f"{defect}.kmz" in names


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_good_vector_decodes_to_its_listing_and_png(path):
    fields, palette, indices, pixels = read_listing(path.with_suffix(".txt"))
    data = path.read_bytes()
    image = kmz.open(path)
    assert (image.width, image.height, image.k, image.bits_per_index) == (
        fields["width"], fields["height"], fields["K"], fields["bits_per_index"])
    assert image.palette.tolist() == [list(c) for c in palette]
    assert image.indices.tolist() == indices
    assert (image.to_array() == pixels).all()
    assert len(data) == fmt.file_size(image.width, image.height, image.k, alpha=image.channels == 4)
    # The index data, packed longhand (MSB first, zero padding), independent of kmz.bitpack.
    b = image.bits_per_index
    stream = "".join(format(i, f"0{b}b") for row in indices for i in row) if b else ""
    stream += "0" * (-len(stream) % 8)
    expected = bytes(int(stream[i : i + 8], 2) for i in range(0, len(stream), 8))
    assert data[24 + image.channels * image.k : -4] == expected
    with Image.open(path.with_suffix(".png")) as png:
        assert png.mode == ("P" if image.k <= 256 else "RGB")
        assert (np.asarray(png.convert("RGBA" if image.channels == 4 else "RGB")) == pixels).all()


@pytest.mark.parametrize("name, error, message", bad_table(), ids=[row[0] for row in bad_table()])
def test_bad_vector_raises_its_listed_error(name, error, message):
    with pytest.raises(kmz.FormatError) as info:
        kmz.open(VECTORS / "bad" / name)
    assert type(info.value) is error
    assert message in str(info.value)


def test_bad_readme_lists_every_bad_file():
    assert sorted(name for name, _, _ in bad_table()) == sorted(p.name for p in (VECTORS / "bad").glob("*.kmz"))


def test_bad_vectors_fail_only_their_own_check():
    # Where the defect is not the checksum, the checksum is valid: skipping it changes nothing.
    for name, error, _ in bad_table():
        if error is errors.ChecksumError:
            continue
        with pytest.raises(error):
            kmz.frombytes((VECTORS / "bad" / name).read_bytes(), verify_checksum=False)


def test_regenerating_gives_the_committed_vectors(tmp_path):
    _load(VECTORS / "make_vectors.py").main(tmp_path)
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    kinds = (".kmz", ".txt", ".png", ".md")
    committed = sorted(p.relative_to(VECTORS) for folder in ("good", "bad") for p in (VECTORS / folder).rglob("*")
                       if p.is_file() and p.suffix in kinds)
    assert made == committed
    _same_files(tmp_path, VECTORS, made)


# The coded vectors -------------------------------------------------------------------


def read_coded_listing(path):
    """The header fields, palette and indices a coded vector's .txt lists."""
    text = path.read_text().splitlines()
    fields = dict(line.split(" ", 1) for line in text[1:6])
    title = next(line for line in text if line.startswith("palette (index: "))
    start = text.index(title) + 1
    k = int(fields["k"])
    palette = [list(map(int, line.split(": ")[1].split(","))) for line in text[start : start + k]]
    rows = text[text.index("indices (one image row per line)") + 1 :]
    return {name: int(value) for name, value in fields.items()}, palette, [list(map(int, row.split())) for row in rows]


@pytest.mark.parametrize("coding", CODED)
def test_coded_vectors_cover_what_the_codings_ask(coding):
    fields = [read_coded_listing(p.with_suffix(".txt"))[0] for p in CODED[coding].glob("*.kmz")]
    ks = {f["k"] for f in fields}
    assert {1, 2, 3, 5, 40, 300} <= ks  # 3, 5, 40 and 300: not powers of two
    assert any(64 < k <= 256 for k in ks)  # B = 7 or 8: coding 2's up step
    assert {1} <= {f["width"] for f in fields} and {1} <= {f["height"] for f in fields}
    assert any(f["width"] > 32 for f in fields)  # wider than coding 2's match context
    assert any(p.read_bytes()[11] & fmt.FLAG_ALPHA for p in CODED[coding].glob("*.kmz"))  # an RGBA palette
    bad = {p.stem for p in (CODED[coding] / "bad").glob("*.kmz")}
    out_of_range = "rank-out-of-range" if coding == "ctx" else "index-out-of-range"
    assert {"payload-bad-start", "payload-short", "payload-trailing", "payload-four-bytes", out_of_range,
            "k-above-4096", "too-many-pixels"} <= bad


@pytest.mark.parametrize("coding", CODED)
def test_coded_good_vectors_decode_to_their_listing_and_png(coding):
    paths = sorted(CODED[coding].glob("*.kmz"))
    assert len(paths) >= 9
    for path in paths:
        fields, palette, indices = read_coded_listing(path.with_suffix(".txt"))
        data = path.read_bytes()
        header, decoded_palette, decoded = fmt.decode(data)
        assert (header.width, header.height, header.k, header.coding) == (
            fields["width"], fields["height"], fields["k"], fmt.coding_id(coding))
        # The payload follows the raw palette (ctx), or the header (mix: it holds the palette).
        assert header.palette_size == (0 if coding == "mix" else header.channels * header.k)
        assert fields["payload_bytes"] == len(data) - fmt.OVERHEAD - header.palette_size
        assert decoded_palette.tolist() == palette
        assert decoded.tolist() == indices
        # An encoder following the spec writes the same bytes.
        assert kmz.KmzImage(np.array(palette, np.uint8), np.array(indices), coding).tobytes() == data
        with Image.open(path.with_suffix(".png")) as png:
            mode = "RGBA" if header.alpha else "RGB"
            assert (np.asarray(png.convert(mode)) == np.array(palette, np.uint8)[decoded]).all()


@pytest.mark.parametrize("coding", CODED)
def test_coded_bad_vectors_raise_their_listed_error(coding):
    readme = (CODED[coding] / "bad" / "README.md").read_text()
    expected = dict(re.findall(r"^\| (\S+\.kmz) \| (\w+) \|", readme, re.M))
    assert sorted(expected) == sorted(p.name for p in (CODED[coding] / "bad").glob("*.kmz"))
    for name, error in expected.items():
        data = (CODED[coding] / "bad" / name).read_bytes()
        assert data[9] == fmt.coding_id(coding)
        for verify in (True, False):  # the checksum is valid: the listed rule is what fails
            with pytest.raises(kmz.FormatError) as info:
                fmt.decode(data, verify_checksum=verify)
            assert type(info.value) is getattr(errors, error), name


def test_regenerating_gives_the_committed_coded_vectors(tmp_path):
    # Coding 2's model may still change; after a change, make_coded_vectors.py rewrites them.
    _load(CODED["ctx"] / "make_coded_vectors.py").main(tmp_path)
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(CODED["ctx"]) for p in CODED["ctx"].rglob("*")
                       if p.is_file() and p.suffix in (".kmz", ".txt", ".png", ".md"))
    assert made == committed
    _same_files(tmp_path, CODED["ctx"], made)
