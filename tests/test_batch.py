"""kmz batch on the local process pool: planning, bad files, dying workers, resumption, CLI."""

import errno
import io
import json
import os
import re
import sys
import threading
from concurrent.futures import ALL_COMPLETED, wait
from pathlib import Path

import numpy as np
import pytest
from batch_hooks import K, kill_on_poison, make_image
from PIL import Image

import kmz
from kmz import batch
from kmz import format as fmt
from kmz.cli import main
from kmz.image import psnr


def read_manifest(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def targets(tasks):
    return sorted(str(t.target) for t in tasks)


# Planning -------------------------------------------------------------------------


def test_plan_mirrors_folders_and_leaves_out_hidden_and_non_images(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    for name in ["a.png", "sub/b.bmp", "sub/deep/c.PNG", ".hidden.png", ".git/d.png"]:
        make_image(src / name)
    (src / "notes.txt").write_text("not an image")
    plan = batch.plan([src], dst)
    assert targets(plan.tasks) == [str(dst / "a.kmz"), str(dst / "sub/b.kmz"), str(dst / "sub/deep/c.kmz")]
    assert plan.ignored == 2  # .hidden.png and notes.txt; .git is not entered
    assert plan.skipped == [] and plan.failed == []


def test_plan_tries_a_named_file_whatever_its_suffix(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    plan = batch.plan([tmp_path / "notes.txt"], tmp_path / "dst")
    assert [(t.source, t.target) for t in plan.tasks] == [(tmp_path / "notes.txt", tmp_path / "dst/notes.kmz")]


def test_plan_glob_mirrors_below_its_fixed_part(tmp_path):
    src = tmp_path / "src"
    for name in ["a.png", "x/b.png", "x/c.bmp"]:
        make_image(src / name)
    plan = batch.plan([f"{src}/**/*.png"], tmp_path / "dst")
    assert targets(plan.tasks) == [str(tmp_path / "dst/a.kmz"), str(tmp_path / "dst/x/b.kmz")]
    with pytest.raises(kmz.KmzError, match=r"^.*/src/\*\.gif: no file or folder matches$"):
        batch.plan([f"{src}/*.gif"], tmp_path / "dst")


def test_plan_takes_an_existing_path_literally_and_a_relative_glob_from_here(tmp_path, monkeypatch):
    make_image(tmp_path / "photo[1].png")
    make_image(tmp_path / "photo1.png")
    plan = batch.plan([tmp_path / "photo[1].png"], tmp_path / "dst")
    assert targets(plan.tasks) == [str(tmp_path / "dst/photo[1].kmz")]
    monkeypatch.chdir(tmp_path)
    plan = batch.plan(["photo?.png"], "dst")
    assert [(str(t.source), str(t.target)) for t in plan.tasks] == [("photo1.png", "dst/photo1.kmz")]


def test_plan_refuses_missing_sources_and_a_file_as_destination(tmp_path):
    with pytest.raises(kmz.KmzError, match=r"/nope: no such file or folder$"):
        batch.plan([tmp_path / "nope"], tmp_path / "dst")
    (tmp_path / "file").write_text("")
    with pytest.raises(kmz.KmzError, match=r"/file: exists and is not a folder$"):
        batch.plan([tmp_path], tmp_path / "file")


def test_plan_fails_both_inputs_of_a_collision(tmp_path):
    make_image(tmp_path / "src/a.png")
    make_image(tmp_path / "src/a.bmp")
    make_image(tmp_path / "src/b.png")
    plan = batch.plan([tmp_path / "src"], tmp_path / "dst")
    assert targets(plan.tasks) == [str(tmp_path / "dst/b.kmz")]
    assert sorted(r["path"] for r in plan.failed) == [str(tmp_path / "src/a.bmp"), str(tmp_path / "src/a.png")]
    src, target = tmp_path / "src", tmp_path / "dst/a.kmz"
    assert sorted(r["error"] for r in plan.failed) == [  # each line names its own input first
        f"{src}/a.bmp: output collision: {src}/a.png also maps to {target}",
        f"{src}/a.png: output collision: {src}/a.bmp also maps to {target}",
    ]


def test_plan_skips_existing_outputs_unless_forced_and_never_overwrites_an_input(tmp_path):
    make_image(tmp_path / "src/a.png")
    make_image(tmp_path / "src/b.png")
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst/a.kmz").write_bytes(b"earlier")
    plan = batch.plan([tmp_path / "src"], tmp_path / "dst")
    assert targets(plan.tasks) == [str(tmp_path / "dst/b.kmz")]
    assert targets(plan.skipped) == [str(tmp_path / "dst/a.kmz")]
    assert len(batch.plan([tmp_path / "src"], tmp_path / "dst", force=True).tasks) == 2
    # Encoding a file named x.kmz into its own folder would replace it.
    (tmp_path / "x.kmz").write_bytes(b"input")
    plan = batch.plan([tmp_path / "x.kmz"], tmp_path, force=True)
    assert plan.tasks == [] and [r["error"] for r in plan.failed] == [f"{tmp_path}/x.kmz: refusing to overwrite the input"]


def test_plan_does_not_walk_into_the_destination(tmp_path):
    make_image(tmp_path / "a.png")
    make_image(tmp_path / "out/decoded.png")
    plan = batch.plan([tmp_path], tmp_path / "out")
    assert targets(plan.tasks) == [str(tmp_path / "out/a.kmz")]


def test_a_glob_leaves_out_the_destination_and_the_manifest(tmp_path, monkeypatch):
    """kmz batch 'g/**' -o g/out, run twice: the second run must not take the first's
    outputs and manifest for inputs."""
    monkeypatch.chdir(tmp_path)
    make_image(tmp_path / "g/a.png")
    (tmp_path / "g/log.jsonl").write_text("")
    first = batch.plan(["g/**"], Path("g/out"), manifest=Path("g/log.jsonl"))
    assert [str(t.source) for t in first.tasks] == ["g/a.png"] and first.failed == []
    batch.run(first, batch.Job(k=K), manifest=Path("g/log.jsonl"), workers=1)
    again = batch.plan(["g/**", "g/*"], Path("g/out"), manifest=Path("g/log.jsonl"))
    assert again.tasks == [] and again.failed == [] and [str(t.target) for t in again.skipped] == ["g/out/a.kmz"]


# Running --------------------------------------------------------------------------


def test_run_records_every_file_and_a_bad_file_fails_alone(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    images = {f"im{i}.png": make_image(src / f"im{i}.png", seed=i) for i in range(6)}
    (src / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    plan = batch.plan([src], dst)
    summary = batch.run(plan, batch.Job(k=K), manifest=dst / "log.jsonl", workers=2, chunk_size=3)
    assert (summary.done, summary.failed, summary.skipped) == (6, 1, 0)
    records = {Path(r["path"]).name: r for r in read_manifest(dst / "log.jsonl")}
    assert sorted(records) == sorted([*images, "corrupt.png"])
    bad = records.pop("corrupt.png")
    assert bad["status"] == "failed" and bad["bytes"] is None
    assert bad["error"] == f"{src}/corrupt.png: cannot read image (Truncated File Read)"
    assert summary.failures == [bad]
    for name, record in records.items():
        output = dst / name.replace(".png", ".kmz")
        assert record["status"] == "done" and record["error"] is None and record["k"] == K
        assert record["bytes"] == output.stat().st_size == fmt.file_size(16, 16, K)
        decoded = kmz.open(output).to_array()
        assert record["psnr"] == round(psnr(images[name], decoded), 3)
    assert summary.bytes == 6 * fmt.file_size(16, 16, K)
    assert list(dst.glob(".*")) == []  # no temporary file left behind


def test_run_starts_with_the_largest_files(tmp_path):
    # One worker, one file a chunk: the manifest is in the order the files were sent.
    src, dst = tmp_path / "src", tmp_path / "dst"
    for name, size in [("a.png", 8), ("b.png", 64), ("c.png", 16), ("d.png", 32)]:
        make_image(src / name, size=size)
    batch.run(batch.plan([src], dst), batch.Job(k=K), manifest=dst / "log.jsonl", workers=1, chunk_size=1)
    assert [Path(r["path"]).name for r in read_manifest(dst / "log.jsonl")] == ["b.png", "d.png", "c.png", "a.png"]


def test_chunks_done_together_are_recorded_in_the_order_sent(tmp_path, monkeypatch):
    # A loaded machine can find several chunks done at one look; here every look waits
    # for all of them. The order recorded must not depend on how a set orders them.
    src, dst = tmp_path / "src", tmp_path / "dst"
    sizes = [64, 56, 48, 40, 32, 24, 16, 8]
    for i, size in enumerate(sizes):
        make_image(src / f"{i}.png", size=size)
    monkeypatch.setattr(batch, "wait", lambda futures, return_when: wait(futures, return_when=ALL_COMPLETED))
    batch.run(batch.plan([src], dst), batch.Job(k=K), manifest=dst / "log.jsonl", workers=2, chunk_size=1)
    assert [Path(r["path"]).name for r in read_manifest(dst / "log.jsonl")] == [f"{i}.png" for i in range(len(sizes))]


def test_ctrl_c_records_the_chunks_that_had_returned(tmp_path, monkeypatch):
    # Ctrl-C while the batch waits, after every chunk in flight had returned: each of
    # their outputs has its line, none more.
    src, dst = tmp_path / "src", tmp_path / "dst"
    for i in range(8):
        make_image(src / f"{i}.png", seed=i)

    def interrupted_wait(futures, return_when):
        wait(futures, return_when=ALL_COMPLETED)
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "wait", interrupted_wait)
    with pytest.raises(KeyboardInterrupt):
        batch.run(batch.plan([src], dst), batch.Job(k=K), manifest=dst / "log.jsonl", workers=2, chunk_size=1)
    records = read_manifest(dst / "log.jsonl")
    assert len(records) == 4  # two chunks a worker in flight
    assert {r["output"] for r in records} == {str(p) for p in dst.glob("*.kmz")}


def test_a_worker_that_dies_costs_only_its_file(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    names = ["a.png", "b.png", "poison.png", "c.png", "flaky.png", "d.png", "e.png", "f.png"]
    for i, name in enumerate(names):
        make_image(src / name, seed=i)
    plan = batch.plan([src], dst)
    summary = batch.run(
        plan, batch.Job(k=K), manifest=dst / "log.jsonl", workers=2, chunk_size=3, convert=kill_on_poison
    )
    records = read_manifest(dst / "log.jsonl")
    assert sorted(Path(r["path"]).name for r in records) == sorted(names)  # each file exactly once
    failed = [r for r in records if r["status"] == "failed"]
    assert [Path(r["path"]).name for r in failed] == ["poison.png"]
    assert failed[0]["error"] == f"worker died (signal 9, SIGKILL) while processing {src}/poison.png, 2 times"
    assert (summary.done, summary.failed) == (7, 1)
    # flaky.png killed its worker once, then went through on the retry.
    assert (src / "flaky.png.died").exists()
    assert sorted(p.name for p in dst.glob("*.kmz")) == sorted(n.replace(".png", ".kmz") for n in names if n != "poison.png")
    assert kmz.open(dst / "flaky.kmz").k == K


def test_isolate_chunk_points_at_the_file_that_kills(tmp_path):
    for i, name in enumerate(["a.png", "poison.png", "b.png"]):
        make_image(tmp_path / name, seed=i)
    tasks = [(str(tmp_path / n), str(tmp_path / n.replace(".png", ".kmz")), False) for n in ["a.png", "poison.png", "b.png"]]
    results = batch.isolate_chunk(tasks, batch.Job(k=K), kill_on_poison, attempts=3)
    assert [r["status"] for r in results] == ["done", "failed", "done"]
    assert results[1]["error"].endswith("poison.png, 3 times")


def test_a_rerun_resumes_and_force_redoes(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    for i in range(5):
        make_image(src / f"im{i}.png", seed=i)
    job, manifest = batch.Job(k=K), dst / "log.jsonl"
    assert batch.run(batch.plan([src], dst), job, manifest=manifest, workers=2).done == 5
    (dst / "im1.kmz").unlink()
    (dst / "im3.kmz").unlink()
    again = batch.run(batch.plan([src], dst), job, manifest=manifest, workers=2)
    assert (again.done, again.skipped, again.failed) == (2, 3, 0)
    # The manifest is appended: the second run added the two files it did.
    assert sorted(Path(r["path"]).name for r in read_manifest(manifest)[5:]) == ["im1.png", "im3.png"]
    forced = batch.run(batch.plan([src], dst, force=True), job, manifest=manifest, workers=1)
    assert (forced.done, forced.skipped) == (5, 0)
    assert len(read_manifest(manifest)) == 12


# The command ----------------------------------------------------------------------


def test_cli_batch_encodes_reports_failures_and_exits_1(tmp_path, capsys):
    src, dst = tmp_path / "src", tmp_path / "dst"
    for i in range(3):
        make_image(src / f"sub/im{i}.png", seed=i)
    (src / "broken.png").write_bytes(b"junk")
    assert main(["batch", str(src), "-o", str(dst), "-k", str(K), "--workers", "2"]) == 1
    out, err = capsys.readouterr()
    manifest = dst / batch.MANIFEST_NAME
    assert out.startswith("kmz batch: 3 done, 0 skipped (output exists), 1 failed; ")
    assert out.rstrip().endswith(f"manifest {manifest}")
    assert err.splitlines() == [
        f"kmz: failed: {src}/broken.png: not an image Pillow can read",
        f"kmz: error: 1 of 4 files tried failed (see {manifest})",
    ]
    assert len(read_manifest(manifest)) == 4
    (src / "broken.png").unlink()
    assert main(["batch", str(src), "-o", str(dst), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("kmz batch: 0 done, 3 skipped (output exists), 0 failed; 0 bytes written") and err == ""


def test_cli_batch_decode_round_trip(tmp_path, capsys):
    src, kmzs, pngs = tmp_path / "src", tmp_path / "kmz", tmp_path / "png"
    for i in range(3):
        make_image(src / f"d{i % 2}/im{i}.png", seed=i)
    assert main(["batch", str(src), "-o", str(kmzs), "-k", str(K), "--quiet"]) == 0
    assert main(["batch", "--decode", str(kmzs), "-o", str(pngs), "--quiet", "--chunk-size", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("kmz batch: 3 done, 0 skipped")
    decoded = sorted(p.relative_to(pngs) for p in pngs.rglob("*.png"))
    assert decoded == [Path("d0/im0.png"), Path("d0/im2.png"), Path("d1/im1.png")]
    for name in decoded:
        expected = kmz.open((kmzs / name).with_suffix(".kmz")).to_array()
        assert np.array_equal(np.asarray(Image.open(pngs / name).convert("RGB")), expected)
    records = read_manifest(pngs / batch.MANIFEST_NAME)
    assert {r["k"] for r in records} == {K} and {r["psnr"] for r in records} == {None}
    assert all(r["bytes"] == os.path.getsize(r["output"]) for r in records)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--decode", "-k", "8", "--coding", "ctx"], "--decode takes no encoding options, not -k, --coding"),
        (["--coding", "ctx", "-k", "5000"], "--coding ctx supports K up to 4096, not 5000"),
        (["--coding", "mix", "-k", "4097"], "--coding mix supports K up to 4096, not 4097"),
        (["--dither", "-k", "300"], "--dither needs K <= 256, not 300"),
        (["--strict", "-k", "8"], "--strict needs a target: --psnr or --max-bytes"),
        (["--psnr", "30", "--max-bytes", "100"], "argument --max-bytes: not allowed with argument --psnr"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "--workers is for the local pool"),
        (["--workers", "0"], "argument --workers: must be greater than 0, not 0"),
    ],
)
def test_cli_batch_usage_errors_exit_2(tmp_path, capsys, extra, message):
    assert main(["batch", str(tmp_path), "-o", str(tmp_path / "out"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_isolate_chunk_stops_when_told(tmp_path):
    make_image(tmp_path / "a.png")
    stop = threading.Event()
    stop.set()
    assert batch.isolate_chunk([(str(tmp_path / "a.png"), str(tmp_path / "a.kmz"), False)], batch.Job(k=K), stop=stop) == []
    assert not (tmp_path / "a.kmz").exists()


def test_a_failure_names_its_file(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_image(src / "ok.png")
    assert batch.run(batch.plan([src], dst), batch.Job(k=K), manifest=dst / "log.jsonl", workers=1).done == 1
    data = bytearray((dst / "ok.kmz").read_bytes())
    data[-1] ^= 1
    (dst / "bad.kmz").write_bytes(bytes(data))
    (dst / "short.kmz").write_bytes(b"\x8bKMZ")
    (tmp_path / "out").mkdir()
    (tmp_path / "out/blocked").write_text("a file where a folder must go")
    (dst / "blocked").mkdir()
    (dst / "blocked/c.kmz").write_bytes((dst / "ok.kmz").read_bytes())
    summary = batch.run(batch.plan([dst], tmp_path / "out", decode=True), batch.Job(decode=True), manifest=tmp_path / "m.jsonl")
    assert summary.done == 1
    errors = sorted(r["error"] for r in summary.failures)
    assert len(errors) == 3
    assert errors[0].startswith(f"{dst}/bad.kmz: checksum mismatch: stored ")
    assert errors[1] == f"{dst}/blocked/c.kmz: {tmp_path}/out/blocked: cannot create folder (file exists)"
    assert errors[2] == f"{dst}/short.kmz: " + str(pytest.raises(kmz.FormatError, kmz.frombytes, b"\x8bKMZ").value)


def test_cli_batch_says_what_is_missing_for_a_cluster_or_a_manifest(tmp_path, capsys, monkeypatch):
    make_image(tmp_path / "src/a.png")
    command = ["batch", str(tmp_path / "src"), "-o", str(tmp_path / "out"), "--quiet"]
    (tmp_path / "file").write_text("")
    assert main([*command, "--manifest", str(tmp_path / "file/log.jsonl")]) == 1
    assert capsys.readouterr().err == (
        f"kmz: error: {tmp_path}/file/log.jsonl: cannot write the manifest (File exists)\n"
    )
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if Dask were not installed
    assert main([*command, "--scheduler", "tcp://127.0.0.1:8786"]) == 1
    assert capsys.readouterr().err == "kmz: error: --scheduler needs Dask: pip install 'kmz[dask]'\n"
    assert not (tmp_path / "out/a.kmz").exists()


@pytest.mark.parametrize(
    "content", [b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", b"my notes\nthe last line", b'{"path": "x"}\nnot a record']
)
def test_a_manifest_that_is_not_one_is_refused_untouched(tmp_path, capsys, content):
    make_image(tmp_path / "a.png")
    (tmp_path / "m").write_bytes(content)
    assert main(["batch", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--manifest", str(tmp_path / "m")]) == 1
    reason = "its last line is not a kmz record" if content.startswith(b"{") else "exists and is not a kmz manifest"
    assert capsys.readouterr().err == f"kmz: error: {tmp_path}/m: {reason} (give another --manifest)\n"
    assert (tmp_path / "m").read_bytes() == content and not (tmp_path / "out/a.kmz").exists()


def test_an_input_named_as_the_manifest_is_never_cut(tmp_path, capsys):
    pixels = make_image(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    assert main(["batch", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--manifest", str(tmp_path / "a.png")]) == 1
    assert capsys.readouterr().err.endswith("a.png: exists and is not a kmz manifest (give another --manifest)\n")
    assert (tmp_path / "a.png").read_bytes() == data and np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), pixels)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_manifest_that_is_not_a_regular_file_is_refused_without_reading_it(tmp_path, capsys):
    make_image(tmp_path / "a.png")
    os.mkfifo(tmp_path / "fifo")  # like /dev/zero, reading it would never end
    assert main(["batch", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--manifest", str(tmp_path / "fifo")]) == 1
    assert capsys.readouterr().err == f"kmz: error: {tmp_path}/fifo: not a regular file, so not a manifest\n"


def test_a_manifest_that_cannot_be_written_ends_in_one_line(tmp_path, capsys, monkeypatch):
    """A full disk: the manifest's write fails (as on a full tmpfs)."""

    class Full(io.FileIO):
        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def full_disk_open(path, mode, **options):  # only the manifest's appending open
        return Full(path, "a") if mode == "ab" else open(path, mode, **options)

    make_image(tmp_path / "a.png")
    monkeypatch.setattr(batch, "open", full_disk_open, raising=False)
    assert main(["batch", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--quiet"]) == 1
    manifest = tmp_path / "out" / batch.MANIFEST_NAME
    assert capsys.readouterr().err == f"kmz: error: {manifest}: cannot write the manifest (No space left on device)\n"


def test_failure_lines_name_files_as_given(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("src").mkdir()
    Path("src/broken.png").write_bytes(b"junk")
    assert main(["batch", "src", "-o", "out", "--quiet"]) == 1
    manifest = read_manifest("out/" + batch.MANIFEST_NAME)
    assert manifest[0]["error"] == "src/broken.png: not an image Pillow can read"
    assert main(["batch", "src", "-o", "out"]) == 1
    assert "kmz: failed: src/broken.png: not an image Pillow can read\n" in capsys.readouterr().err


# Resuming after a kill, encode's options -------------------------------------------


def test_a_rerun_checks_outputs_the_manifest_lacks_and_replaces_none(tmp_path):
    """As after a kill -9: outputs written whose chunk never returned, and a last manifest
    line cut short. What is not exactly this run's output is left as it is."""
    src, dst, manifest = tmp_path / "src", tmp_path / "dst", tmp_path / "dst/log.jsonl"
    images = {f"im{i}.png": make_image(src / f"im{i}.png", seed=i) for i in range(4)}
    job = batch.Job(k=K)
    batch.run(batch.plan([src], dst), job, manifest=manifest, workers=1)
    kept = [line for line in manifest.read_text().splitlines(keepends=True) if '/im0.png"' in line or '/im3.png"' in line]
    manifest.write_text("".join(kept) + '{"path": "' + str(src / "im1.png") + '", "outp')
    (dst / "im2.kmz").write_bytes((dst / "im2.kmz").read_bytes()[:-9])  # damaged
    images["im4.png"] = make_image(src / "im4.png", seed=4)
    (dst / "im4.kmz").write_bytes((dst / "im0.kmz").read_bytes())  # another image's, of the same size
    before = {name: (dst / name).read_bytes() for name in ["im2.kmz", "im4.kmz"]}
    untouched = (dst / "im1.kmz").stat().st_mtime_ns

    summary = batch.run(batch.plan([src], dst), job, manifest=manifest, workers=2, chunk_size=1)
    assert (summary.done, summary.found, summary.skipped, summary.failed) == (0, 1, 2, 2)
    assert str(summary).startswith("kmz batch: 0 done, 1 found already written (checked), 2 skipped (output exists), ")
    records = read_manifest(manifest)  # every line whole: the cut one was removed
    assert sorted(Path(r["path"]).name for r in records) == [f"im{i}.png" for i in range(5)]
    by_name = {Path(r["path"]).name: r for r in records}
    found = by_name["im1.png"]
    assert found["found"] and found["status"] == "done" and (dst / "im1.kmz").stat().st_mtime_ns == untouched
    assert found["psnr"] == round(psnr(images["im1.png"], kmz.open(dst / "im1.kmz").to_array()), 3)
    assert (found["k"], found["bytes"]) == (K, fmt.file_size(16, 16, K))
    for name in ["im2", "im4"]:
        assert by_name[f"{name}.png"]["error"] == (
            f"{src}/{name}.png: {dst}/{name}.kmz: exists and is not what this run would write (use --force to replace it)"
        )
        assert (dst / f"{name}.kmz").read_bytes() == before[f"{name}.kmz"]
    forced = batch.run(batch.plan([src], dst, force=True), job, manifest=manifest, workers=1)
    assert (forced.done, forced.failed) == (5, 0)
    assert kmz.open(dst / "im4.kmz").tobytes() == kmz.encode(images["im4.png"], k=K).tobytes()


def test_a_found_output_of_other_options_is_not_trusted(tmp_path):
    make_image(tmp_path / "src/a.png")
    batch.run(batch.plan([tmp_path / "src"], tmp_path / "dst"), batch.Job(k=K), manifest=tmp_path / "one.jsonl")
    summary = batch.run(batch.plan([tmp_path / "src"], tmp_path / "dst"), batch.Job(k=K - 1), manifest=tmp_path / "two.jsonl")
    assert (summary.found, summary.failed) == (0, 1)
    assert kmz.open(tmp_path / "dst/a.kmz").k == K


def test_cli_counts_found_outputs_among_the_files_tried(tmp_path, capsys):
    for name in ["a.png", "b.png"]:
        make_image(tmp_path / "src" / name, seed=len(name))
    command = ["batch", str(tmp_path / "src"), "-o", str(tmp_path / "dst"), "-k", str(K), "-q"]
    assert main([*command, "--manifest", str(tmp_path / "one.jsonl")]) == 0
    (tmp_path / "dst/b.kmz").write_bytes(b"someone else's")
    capsys.readouterr()
    assert main([*command, "--manifest", str(tmp_path / "two.jsonl")]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("kmz batch: 0 done, 1 found already written (checked), 0 skipped (output exists), 1 failed")
    assert err == f"kmz: error: 1 of 2 files tried failed (see {tmp_path}/two.jsonl)\n"


def test_decoding_next_to_the_sources_never_replaces_the_originals(tmp_path):
    """kmz batch --decode ph -o ph: ph/a.png is the photo that ph/a.kmz was made from."""
    original = make_image(tmp_path / "ph/a.png")
    batch.run(batch.plan([tmp_path / "ph/a.png"], tmp_path / "ph"), batch.Job(k=K), manifest=tmp_path / "e.jsonl")
    summary = batch.run(batch.plan([tmp_path / "ph"], tmp_path / "ph", decode=True), batch.Job(decode=True),
                        manifest=tmp_path / "d.jsonl")  # fmt: skip
    assert (summary.done, summary.found, summary.failed) == (0, 0, 1)
    assert summary.failures[0]["error"].endswith("ph/a.png: exists and is not what this run would write (use --force to replace it)")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "ph/a.png")), original)


def test_a_decode_rerun_trusts_only_a_png_with_the_right_pixels(tmp_path):
    kmzs, pngs = tmp_path / "kmz", tmp_path / "png"
    for i in range(2):
        make_image(tmp_path / f"im{i}.png", seed=i)
    rgba = np.dstack([make_image(tmp_path / "other.png", seed=2), np.tile(np.arange(0, 256, 16, dtype=np.uint8), (16, 1))])
    kmzs.mkdir()
    kmz.encode(rgba, k=K).save(kmzs / "im2.kmz")
    batch.run(batch.plan([tmp_path], kmzs), batch.Job(k=K), manifest=tmp_path / "encode.jsonl", workers=1)
    pngs.mkdir()
    kmz.open(kmzs / "im0.kmz").save(pngs / "im0.png")
    Image.fromarray(kmz.open(kmzs / "im0.kmz").to_array()).save(pngs / "im1.png")  # im0's pixels
    kmz.open(kmzs / "im2.kmz").save(pngs / "im2.png")  # RGBA: a palette PNG with tRNS
    im1 = (pngs / "im1.png").read_bytes()
    summary = batch.run(batch.plan([kmzs], pngs, decode=True), batch.Job(decode=True), manifest=pngs / "log.jsonl")
    assert (summary.done, summary.found, summary.failed) == (1, 2, 1)
    records = {Path(r["path"]).name: r for r in read_manifest(pngs / "log.jsonl")}
    assert {name: r["found"] for name, r in records.items() if r["status"] == "done"} == {
        "im0.kmz": True, "im2.kmz": True, "other.kmz": False}  # fmt: skip
    assert records["im1.kmz"]["error"].endswith("png/im1.png: exists and is not what this run would write (use --force to replace it)")
    assert (pngs / "im1.png").read_bytes() == im1


def test_an_output_that_is_not_a_regular_file_is_never_replaced(tmp_path):
    make_image(tmp_path / "src/a.png")
    (tmp_path / "dst/a.kmz").mkdir(parents=True)
    for force in (False, True):
        plan = batch.plan([tmp_path / "src"], tmp_path / "dst", force=force)
        assert plan.tasks == [] and plan.skipped == []
        assert [r["error"] for r in plan.failed] == [f"{tmp_path}/dst/a.kmz: exists and is not a regular file"]


@pytest.mark.parametrize(
    "options",
    [
        ["--coding", "ctx", "-k", "12", "--seed", "3", "--background", "white"],
        ["--space", "oklab", "--dither", "-k", "6", "--background", "white"],
        ["--psnr", "30", "--background", "white"],
        ["--max-bytes", "300", "--coding", "ctx", "--background", "white"],
        ["--max-bytes", "300", "--coding", "mix", "-k", "40", "--background", "white"],
        ["--frame", "1", "--background", "#102030", "-k", "4"],
    ],
)
def test_cli_batch_encodes_as_encode_does_with_its_options(tmp_path, capsys, options):
    # Two frames, half transparent: what --frame and --background act on.
    frames = [np.dstack([make_image(tmp_path / "tmp.png", seed=i), np.arange(256, dtype=np.uint8).reshape(16, 16)])
              for i in range(2)]
    (tmp_path / "src").mkdir()
    frames = [Image.fromarray(frame, "RGBA") for frame in frames]
    frames[0].save(tmp_path / "src/anim.png", save_all=True, append_images=frames[1:])
    assert main(["encode", str(tmp_path / "src/anim.png"), "-o", str(tmp_path / "one.kmz"), *options]) == 0
    encode_line = capsys.readouterr().out.strip()
    assert main(["batch", str(tmp_path / "src"), "-o", str(tmp_path / "dst"), "--quiet", *options]) == 0
    assert (tmp_path / "dst/anim.kmz").read_bytes() == (tmp_path / "one.kmz").read_bytes()
    [record] = read_manifest(tmp_path / "dst" / batch.MANIFEST_NAME)
    assert f"K={record['k']}," in encode_line
    # The manifest keeps 3 decimals, the line 2: compare the numbers, not their digits.
    assert abs(float(re.search(r"PSNR ([0-9.]+) dB", encode_line)[1]) - record["psnr"]) <= 0.0051
    if "--frame" in options:
        assert record["notes"] == ["the image has transparency; composited onto #102030"]
    else:
        assert record["notes"][:2] == ["the image has 2 frames; encoded the first (--frame N picks another)",
                                       "the image has transparency; composited onto white"]
    if "--psnr" in options or "--max-bytes" in options:
        assert len(record["notes"]) == 3 and f"; {record['notes'][2]}" in encode_line


def test_cli_batch_strict_target_fails_the_file_and_writes_nothing(tmp_path, capsys):
    make_image(tmp_path / "src/a.png")
    assert main(["batch", str(tmp_path / "src"), "-o", str(tmp_path / "dst"), "--psnr", "99", "-k", "8", "--strict", "-q"]) == 1
    [record] = read_manifest(tmp_path / "dst" / batch.MANIFEST_NAME)
    assert record["status"] == "failed" and record["error"].startswith(f"{tmp_path}/src/a.png: target PSNR >= 99 dB NOT met")
    assert not (tmp_path / "dst/a.kmz").exists()
