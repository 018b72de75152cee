"""The encoder's bytes are pinned: every row of tests/golden/encodes.tsv (images x K x
space x dither x coding, recorded by tests/golden/make_table.py) is encoded again and
must give the same SHA-256. Rows of corpus images skip without ../shared/corpus."""

import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))

import make_table  # noqa: E402


def _rows():
    lines = (GOLDEN / "encodes.tsv").read_text().splitlines()
    header = tuple(lines[0].split("\t"))
    assert header == make_table.COLUMNS
    table = {}
    for line in lines[1:]:
        image, k, space, dither, coding, size, digest = line.split("\t")
        table.setdefault((image, int(k), space, bool(int(dither))), {})[coding] = (int(size), digest)
    return table


TABLE = _rows()


def test_the_table_covers_the_matrix():
    assert set(TABLE) == set(make_table.cases())
    assert all(set(codings) == set(make_table.CODINGS) for codings in TABLE.values())


def _params():
    """The bundled samples' rows run by default; the corpus images' rows (larger, up to
    1 MP at K = 4096) are marked slow, for CI."""
    for case in sorted(TABLE, key=str):
        marks = [pytest.mark.slow] if case[0].startswith("corpus/") else []
        yield pytest.param(case, id="-".join(map(str, case)), marks=marks)


@pytest.mark.parametrize("case", list(_params()))
def test_encode_gives_the_recorded_bytes(case):
    image = case[0]
    if not make_table.IMAGES[image].exists():
        pytest.skip(f"{image} is not here (../shared/corpus missing)")
    got = {row[4]: (int(row[5]), row[6]) for row in make_table.encode_case(case)}
    assert got == TABLE[case]
