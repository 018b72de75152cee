"""Quality targets: the K chosen is checked against a brute-force sweep of every K."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kmz
from kmz import cli
from kmz import format as fmt
from kmz.image import psnr
from kmz.targets import first_yes, largest_k_for_bytes

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "kodim03.png"
K_MAX = 16


@pytest.fixture(scope="module")
def pixels():
    with Image.open(SAMPLE) as im:
        return np.asarray(im.convert("RGB").crop((0, 0, 24, 24)))  # 24x24: ~550 colours


@pytest.fixture(scope="module")
def brute_force(pixels):
    """PSNR and file size of every K in 1..K_MAX: what the search must agree with."""
    sweep = {}
    for k in range(1, K_MAX + 1):
        image = kmz.encode(pixels, k=k)
        assert image.k == k
        sweep[k] = (psnr(pixels, image.to_array()), len(image.tobytes()))
    return sweep


def test_first_yes_finds_every_threshold_of_a_monotone_question():
    for k_max in (1, 2, 7, 64, 100):
        for threshold in range(1, k_max + 1):
            found, asked = first_yes(lambda k: k >= threshold, k_max)
            assert found == threshold
            assert len(asked) <= 2 * k_max.bit_length()
        assert first_yes(lambda k: False, k_max)[0] is None


def test_first_yes_on_a_non_monotone_question_returns_a_boundary():
    # yes at 3 and from 40 on: the search finds the boundary at 40, not the lone 3;
    # that is the documented guarantee (question(K) true, question(K - 1) false).
    answers = lambda k: k == 3 or k >= 40  # noqa: E731
    found, asked = first_yes(answers, 64)
    assert found == 40 and answers(found) and not answers(found - 1)
    assert 3 not in asked


def test_largest_k_for_bytes_matches_every_budget_brute_force():
    size_at = lambda k: fmt.file_size(10, 10, k)  # noqa: E731
    for budget in range(25, fmt.file_size(10, 10, 40) + 2):
        result = largest_k_for_bytes(budget, size_at, k_max=40)
        fitting = [k for k in range(1, 41) if size_at(k) <= budget]
        assert result.met == bool(fitting)
        assert result.k == (max(fitting) if fitting else 1)
        assert result.reached == size_at(result.k)


def test_psnr_target_chooses_the_minimal_k(pixels, brute_force):
    psnrs = [brute_force[k][0] for k in range(1, K_MAX + 1)]
    assert psnrs == sorted(psnrs)  # on this image PSNR grows with K, so a boundary is the minimum
    for goal in (brute_force[5][0] - 0.01, brute_force[5][0], brute_force[K_MAX][0]):
        image = kmz.encode(pixels, psnr=goal, k=K_MAX)
        expected = min(k for k in brute_force if brute_force[k][0] >= goal)
        result = image.target
        assert (result.target, result.k, result.met, image.k) == ("psnr", expected, True, expected)
        assert result.reached == pytest.approx(brute_force[expected][0])
        assert len(result.tried) <= 8 < K_MAX  # a search, not a sweep


def test_max_bytes_target_chooses_the_maximal_k(pixels, brute_force):
    sizes = {k: brute_force[k][1] for k in brute_force}
    for budget in (sizes[1], sizes[2] - 1, sizes[9] + 2, sizes[K_MAX] * 2):
        image = kmz.encode(pixels, max_bytes=budget, k=K_MAX)
        expected = max(k for k in sizes if sizes[k] <= budget)
        assert (image.target.k, image.target.met, image.k) == (expected, True, expected)
        assert len(image.tobytes()) == image.target.reached <= budget


@pytest.mark.parametrize("coding", ["ctx", "mix"])
def test_max_bytes_target_measures_coded_sizes(pixels, coding):
    # A coded file's size does not follow from K: each K tried is coded and measured,
    # and the guarantee is the raw one's, on those sizes.
    sizes = {k: len(kmz.encode(pixels, k=k, coding=coding).tobytes()) for k in range(1, K_MAX + 1)}
    for budget in (sizes[3], sizes[9] + 1, sizes[K_MAX]):
        image = kmz.encode(pixels, max_bytes=budget, k=K_MAX, coding=coding)
        k = image.target.k
        assert (image.coding, image.target.met, image.k) == (coding, True, k)
        assert len(image.tobytes()) == image.target.reached == sizes[k] <= budget
        assert k == K_MAX or sizes[k + 1] > budget


@pytest.mark.parametrize("sizes, k, edge", [
    ({1: 500, 2: 900, 3: 1035, 4: 1328, 5: 1252, 8: 1271}, 3, "K=4 does not fit"),  # kodim03 with mix
    ({1: 500, 2: 900, 3: 1035, 4: 1200, 5: 1252, 8: 1271}, 8, "the largest K searched"),
])
def test_a_size_target_says_the_boundary_it_proved_not_largest(sizes, k, edge):
    # Coded sizes need not grow with K (K = 5 fits here too): the line claims only what
    # the search measured.
    found = largest_k_for_bytes(1300, lambda k: sizes[max(key for key in sizes if key <= k)], k_max=8)
    assert found.k == k
    assert found.describe() == (f"target size <= 1,300 bytes met: K={k} ({sizes[k]:,} bytes; {edge}; "
                                f"{len(found.tried)} K tried in 1..8)")


@pytest.mark.parametrize("coding", ["raw", "ctx"])
def test_a_size_target_reports_the_file_written_when_the_image_has_fewer_colours(coding):
    three = np.zeros((10, 20, 3), np.uint8)
    three[:5, :10] = (0, 255, 0)
    three[5:, 10:] = (0, 0, 255)
    image = kmz.encode(three, max_bytes=1000, coding=coding)
    written = len(image.tobytes())
    assert (image.k, image.target.k, image.target.reached, image.target.colours) == (3, 3, written, 3)
    assert image.target.describe() == (f"target size <= 1,000 bytes met: K=3 ({written} bytes; as many as the "
                                       f"image has colours: every larger K gives this file; "
                                       f"{len(image.target.tried)} K tried in 1..256)")


def test_an_unreachable_psnr_gives_the_closest_k(pixels, brute_force):
    image = kmz.encode(pixels, psnr=99, k=K_MAX)
    best = max(brute_force[k][0] for k in (1, 2, 4, 8, K_MAX))
    assert (image.target.met, image.target.k, image.target.tried) == (False, K_MAX, (1, 2, 4, 8, K_MAX))
    assert image.target.reached == pytest.approx(best)
    assert "NOT met: closest is K=16" in image.target.describe()
    with pytest.raises(kmz.TargetError, match=r"target PSNR >= 99 dB NOT met") as caught:
        kmz.encode(pixels, psnr=99, k=K_MAX, strict=True)
    assert caught.value.result == image.target


def test_an_unreachable_budget_gives_k_1(pixels):
    image = kmz.encode(pixels, max_bytes=30)
    assert (image.k, image.target.met, image.target.reached) == (1, False, fmt.file_size(24, 24, 1))
    with pytest.raises(kmz.TargetError):
        kmz.encode(pixels, max_bytes=30, strict=True)


def test_one_target_at_a_time(pixels):
    with pytest.raises(ValueError, match="not both"):
        kmz.encode(pixels, psnr=30, max_bytes=1000)


def run(capsys, *args):
    status = cli.main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def small_png(tmp_path, pixels):
    path = tmp_path / "small.png"
    Image.fromarray(pixels).save(path)
    return path


def test_cli_psnr_target_says_which_k_and_what_was_reached(capsys, small_png, brute_force):
    status, out, err = run(capsys, "encode", small_png, "--psnr", 30, "-k", K_MAX)
    expected = min(k for k in brute_force if brute_force[k][0] >= 30)
    assert status == 0, err
    assert (f"target PSNR >= 30 dB met: K={expected} ({brute_force[expected][0]:.2f} dB; K={expected - 1} does not "
            f"reach it; ") in out
    assert kmz.open(small_png.with_suffix(".kmz")).k == expected


def test_cli_unmet_target_writes_the_closest_and_exits_0_unless_strict(capsys, small_png):
    status, out, err = run(capsys, "encode", small_png, "--max-bytes", 30)
    assert status == 0, err
    assert "target size <= 30 bytes NOT met: closest is K=1" in out
    assert kmz.open(small_png.with_suffix(".kmz")).k == 1
    status, out, err = run(capsys, "encode", small_png, "--max-bytes", 30, "--strict", "-o", small_png.with_name("s.kmz"))
    assert (status, out) == (1, "")
    assert err.startswith("kmz: error: target size <= 30 bytes NOT met")
    assert not small_png.with_name("s.kmz").exists()


def test_cli_target_line_gives_the_k_and_size_written(capsys, tmp_path):
    path = tmp_path / "three.png"
    Image.fromarray(np.repeat(np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8), 4, axis=1)).save(path)
    status, out, err = run(capsys, "encode", path, "--max-bytes", 1000)
    size = path.with_suffix(".kmz").stat().st_size
    assert status == 0, err
    assert out.startswith(f"{path.with_suffix('.kmz')}: {size} bytes, K=3, ")
    assert f"target size <= 1,000 bytes met: K=3 ({size} bytes; as many as the image has colours" in out


def test_cli_rejects_two_targets_and_bad_values(capsys, small_png):
    for args, message in (
        (("--psnr", 30, "--max-bytes", 100), "not allowed with argument"),
        (("--psnr", "-3"), "must be greater than 0"),
        (("--max-bytes", "x"), "expected a number, not 'x'"),
    ):
        assert cli.main(["encode", str(small_png), *map(str, args)]) == 2
        assert message in capsys.readouterr().err
