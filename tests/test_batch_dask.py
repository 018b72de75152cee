"""kmz batch on a Dask cluster: a LocalCluster of two worker processes, started here."""

import json
import logging
from pathlib import Path

import pytest
from batch_hooks import K, kill_on_poison, make_image

import kmz
from kmz import batch
from kmz import format as fmt
from kmz.cli import main

pytestmark = pytest.mark.slow  # a cluster's start and stop: CI runs these with -m slow

distributed = pytest.importorskip("distributed", reason="Dask is an optional extra: pip install 'kmz[dask]'")
dask = pytest.importorskip("dask")


@pytest.fixture(scope="module")
def scheduler():
    # One failure allowed: a task whose worker dies is rerun once, and fails with
    # KilledWorker on the second death (the default, 3, only makes the test slower).
    # Saturation 1.0 keeps one task per worker thread, so a death blames only the task
    # that was running.
    config = {"distributed.scheduler.allowed-failures": 1, "distributed.scheduler.worker-saturation": 1.0}
    with dask.config.set(config), distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    ) as cluster:
        yield cluster.scheduler_address


def records_by_name(manifest):
    return {Path(r["path"]).name: r for r in map(json.loads, Path(manifest).read_text().splitlines())}


def test_dask_run_survives_a_bad_file_and_a_worker_killer(tmp_path, scheduler):
    src, dst = tmp_path / "src", tmp_path / "dst"
    names = ["a.png", "b.png", "poison.png", "c.png", "flaky.png", "d.png"]
    for i, name in enumerate(names):
        make_image(src / name, seed=i)
    (src / "corrupt.png").write_bytes(b"junk")
    plan = batch.plan([src], dst)
    summary = batch.run(
        plan, batch.Job(k=K), manifest=dst / "log.jsonl", scheduler=scheduler, chunk_size=3, convert=kill_on_poison
    )
    records = records_by_name(dst / "log.jsonl")
    assert sorted(records) == sorted([*names, "corrupt.png"])
    assert (summary.done, summary.failed) == (5, 2)
    assert records["corrupt.png"]["error"] == f"{src}/corrupt.png: not an image Pillow can read"
    poison = records["poison.png"]
    assert poison["status"] == "failed"
    assert poison["error"].startswith(
        f"worker died while processing {src}/poison.png, every time Dask retried it (Attempted to run task "
    )
    for name in ["a.png", "b.png", "c.png", "flaky.png", "d.png"]:
        record = records[name]
        assert record["status"] == "done" and record["bytes"] == fmt.file_size(16, 16, K)
        assert kmz.open(dst / name.replace(".png", ".kmz")).k == K
    assert (src / "flaky.png.died").exists()  # it killed a worker once, and Dask reran it


def test_dask_run_resumes_through_the_cli(tmp_path, scheduler, capsys):
    src, dst = tmp_path / "src", tmp_path / "dst"
    for i in range(4):
        make_image(src / f"im{i}.png", seed=i)
    command = ["batch", str(src), "-o", str(dst), "-k", str(K), "--scheduler", scheduler, "--quiet"]
    assert main(command) == 0
    assert capsys.readouterr().out.startswith("kmz batch: 4 done, 0 skipped")
    (dst / "im2.kmz").unlink()
    assert main(command) == 0
    assert capsys.readouterr().out.startswith("kmz batch: 1 done, 3 skipped")
    assert main([*command, "--force"]) == 0
    assert capsys.readouterr().out.startswith("kmz batch: 4 done, 0 skipped")
    assert len(records_by_name(dst / batch.MANIFEST_NAME)) == 4


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path, capsys):
    make_image(tmp_path / "src/a.png")
    command = ["batch", str(tmp_path / "src"), "-o", str(tmp_path / "out"), "--quiet", "--scheduler"]
    assert main([*command, "nosuch://127.0.0.1:9"]) == 1
    assert capsys.readouterr().err.startswith(
        "kmz: error: cannot connect to the Dask scheduler at nosuch://127.0.0.1:9: unknown address scheme 'nosuch'"
    )
