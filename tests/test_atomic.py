"""Nothing is lost: outputs appear whole or not at all, inputs and existing outputs are
kept, and a full disk or a read-only folder gives a clear error and leaves nothing."""

import errno
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kmz
from kmz import io
from kmz.cli import main

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def leftovers(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp"))


def test_write_atomic_writes_whole_file_with_umask_mode(tmp_path):
    old = os.umask(0o027)
    try:
        io.write_bytes(tmp_path / "a.kmz", b"x" * 1000)
    finally:
        os.umask(old)
    assert (tmp_path / "a.kmz").read_bytes() == b"x" * 1000
    assert stat.S_IMODE((tmp_path / "a.kmz").stat().st_mode) == 0o640
    assert leftovers(tmp_path) == []


def test_failed_writer_leaves_nothing_and_keeps_the_old_file(tmp_path):
    out = tmp_path / "a.kmz"
    out.write_bytes(b"old")

    def half_then_fail(f):
        f.write(b"new" * 100)
        raise RuntimeError("writer failed")

    with pytest.raises(RuntimeError):
        io.write_atomic(out, half_then_fail)
    assert out.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 64 KiB tmpfs: a real full disk. Needs root and a kernel that allows the mount."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root); see test_enospc_simulated")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_full_disk_gives_a_clear_error_and_leaves_nothing(tiny_tmpfs, capsys):
    out = tiny_tmpfs / "big.kmz"
    with pytest.raises(kmz.WriteError, match=rf"^{out}: cannot write \(No space left on device\)$"):
        io.write_bytes(out, b"\0" * (1 << 20))
    assert list(tiny_tmpfs.iterdir()) == []
    # Through the CLI: 131,072 pixels of 256 grey levels, so 8 bits per index (128 KiB)
    # and no k-means: the .kmz cannot fit in 64 KiB.
    source = tiny_tmpfs.parent / "grey.png"
    Image.fromarray(np.arange(256 * 512, dtype=np.uint32).reshape(256, 512).astype(np.uint8)).save(source)
    assert main(["encode", str(source), "-k", "256", "-o", str(out)]) == 1
    assert capsys.readouterr().err == f"kmz: error: {out}: cannot write (No space left on device)\n"
    assert list(tiny_tmpfs.iterdir()) == []


def test_enospc_simulated(tmp_path, monkeypatch):
    """The same path without a mount: fsync reports the full disk, as on NFS or ext4 delalloc."""
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(kmz.WriteError, match=r"a.kmz: cannot write \(No space left on device\)$"):
        io.write_bytes(tmp_path / "a.kmz", b"data")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody can write to, root included: a read-only tmpfs, else chattr +i."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], capture_output=True).returncode == 0:
        yield folder
        subprocess.run(["umount", str(folder)], check=True)
    elif subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        yield folder
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    elif os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
    else:
        pytest.skip("as root, neither a read-only mount nor chattr +i is available")


def test_read_only_folder_gives_a_clear_error(read_only_folder, tmp_path, capsys):
    out = read_only_folder / "a.kmz"
    with pytest.raises(kmz.WriteError, match=rf"^{out}: cannot write \((Read-only file system|Operation not permitted|Permission denied)\)$"):
        io.write_bytes(out, b"data")
    source = tmp_path / "a.png"
    Image.new("RGB", (4, 4), "red").save(source)
    assert main(["encode", str(source), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"kmz: error: {out}: cannot write (") and err.count("\n") == 1
    assert list(read_only_folder.iterdir()) == []


def test_existing_output_kept_without_force(tmp_path, capsys):
    source = tmp_path / "a.png"
    Image.new("RGB", (4, 4), "red").save(source)
    out = tmp_path / "a.kmz"
    out.write_bytes(b"precious")
    assert main(["encode", str(source)]) == 1
    assert capsys.readouterr().err == f"kmz: error: {out}: exists (use --force to replace it)\n"
    assert out.read_bytes() == b"precious"
    assert main(["encode", str(source), "--force"]) == 0
    assert kmz.open(out).palette.tolist() == [[255, 0, 0]]


def test_input_is_never_overwritten(tmp_path, capsys):
    source = tmp_path / "a.kmz"
    kmz.encode(np.zeros((2, 2, 3), np.uint8), k=1).save(source)
    before = source.read_bytes()
    link = tmp_path / "link.png"
    link.symlink_to(source)
    for output in (source, link):
        assert main(["decode", str(source), "-o", str(output), "--force"]) == 1
        assert capsys.readouterr().err == f"kmz: error: {output}: refusing to overwrite the input\n"
    assert source.read_bytes() == before and link.is_symlink()


def _noise_png(path, size):
    Image.fromarray(np.random.default_rng(7).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)


def _wait_for(condition, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.002)
    return False


SLOW_QUANTIZE_ENCODE = """
import sys, time
import kmz.image
real_quantize = kmz.image.quantize
def slow_quantize(*args, **kwargs):  # killed in the middle of the encode, whatever the speed
    result = real_quantize(*args, **kwargs)
    open(sys.argv[-1], "w").close()
    time.sleep(60)
    return result
kmz.image.quantize = slow_quantize
from kmz.cli import main
sys.exit(main(sys.argv[1:-1]))
"""


def test_sigkill_during_encode_leaves_no_output(tmp_path):
    source, marker = tmp_path / "noise.png", tmp_path / "quantized"
    _noise_png(source, 256)
    process = subprocess.Popen([sys.executable, "-c", SLOW_QUANTIZE_ENCODE, "encode", str(source), "-k", "256",
                                str(marker)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait_for(marker.exists, 120), "the encode never got through quantization"
    finally:
        process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noise.png", "quantized"]


SLOW_FSYNC_ENCODE = """
import os, sys, time
real_fsync = os.fsync
def slow_fsync(fd):  # a slow disk: the whole temporary file is written, the sync hangs
    time.sleep(60)
    real_fsync(fd)
os.fsync = slow_fsync
from kmz.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_sigkill_while_writing_keeps_the_old_output(tmp_path):
    source, out = tmp_path / "noise.png", tmp_path / "noise.kmz"
    _noise_png(source, 64)
    out.write_bytes(b"the previous output")
    process = subprocess.Popen([sys.executable, "-c", SLOW_FSYNC_ENCODE, "encode", str(source), "-k", "16", "--force"],
                               env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait_for(lambda: leftovers(tmp_path), 120), "no temporary file appeared"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert out.read_bytes() == b"the previous output"
    # SIGKILL allows no clean-up: the temporary file stays, named so it is recognisable.
    (temp,) = leftovers(tmp_path)
    assert temp.startswith(".noise.kmz.") and temp.endswith(".tmp")
