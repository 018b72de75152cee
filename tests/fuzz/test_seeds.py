"""The atheris seed corpus is what make_seeds.py writes, and holds every index coding."""

from pathlib import Path

from make_seeds import SEEDS, seed_files

from kmz import format as fmt


def test_seeds_are_current_and_cover_every_coding():
    files = seed_files()
    assert {path.name: path.read_bytes() for path in Path(SEEDS).glob("*.kmz")} == files
    codings = {fmt.decode(data)[0].coding for data in files.values()}
    assert codings == set(fmt.CODINGS)
