"""Write encodes.tsv: the SHA-256 of kmz's output over a matrix of images and options.

The table pins the encoder's bytes: tests/test_golden.py encodes every row again and
compares. Regenerate it (python tests/golden/make_table.py) only when a change to the
output is deliberate, and say so in the commit. Rows of corpus images are kept when
../shared/corpus is absent, and skipped by the test.
"""

import hashlib
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

import kmz  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
# (name in the table, path): two bundled samples, then a photo, a graphic, a screenshot
# and a 1 MP photograph from the corpus.
IMAGES = {
    "samples/kodim03.png": ROOT / "samples" / "kodim03.png",
    "samples/shapes.png": ROOT / "samples" / "shapes.png",
    "corpus/kodak/kodim05.png": CORPUS / "kodak" / "kodim05.png",
    "corpus/waterloo/frymire.png": CORPUS / "waterloo" / "frymire.png",
    "corpus/screens/gnome-nautilus-icons.png": CORPUS / "screens" / "gnome-nautilus-icons.png",
    "corpus/photos/wiki-004.png": CORPUS / "photos" / "wiki-004.png",
}
KS = (2, 16, 64, 256, 1000, 4096)
SPACES = ("rgb", "oklab")
CODINGS = ("raw", "ctx")
DITHER_MAX_K = 256
COLUMNS = ("image", "k", "space", "dither", "coding", "bytes", "sha256")


def cases():
    """(image, k, space, dither) for every quantization in the matrix."""
    for image in IMAGES:
        for k in KS:
            for space in SPACES:
                for dither in (False, True):
                    if not dither or k <= DITHER_MAX_K:
                        yield image, k, space, dither


def encode_case(case):
    """The table's rows for one quantization: one per coding."""
    image, k, space, dither = case
    encoded = kmz.encode(IMAGES[image], k=k, space=space, dither=dither)
    rows = []
    for coding in CODINGS:
        encoded.coding = coding
        data = encoded.tobytes()
        rows.append((image, str(k), space, str(int(dither)), coding, str(len(data)), hashlib.sha256(data).hexdigest()))
    return rows


def main():
    todo = [case for case in cases() if IMAGES[case[0]].exists()]
    with ProcessPoolExecutor(2) as pool:
        rows = [row for result in pool.map(encode_case, todo) for row in result]
    lines = ["\t".join(COLUMNS)] + ["\t".join(row) for row in rows]
    (HERE / "encodes.tsv").write_text("\n".join(lines) + "\n")
    print(f"{len(rows)} rows written to {HERE / 'encodes.tsv'}")


if __name__ == "__main__":
    main()
