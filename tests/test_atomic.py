"""Nothing is lost: outputs appear whole or not at all, inputs and existing outputs are
kept, and a full disk or a read-only folder gives a clear error and leaves nothing."""

import errno
import os
import signal
import stat
import subprocess
import sys
import time
import tomllib
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


# 255 and 254 bytes; a temporary name keeps 233 bytes of NAME, 232 at a character's start
@pytest.mark.parametrize("name, kept", [("a" * 251 + ".kmz", 233), ("é" * 125 + ".kmz", 116)])
def test_the_longest_file_names_can_be_written(name, kept, tmp_path, capsys):
    seen = []

    def write(f):
        seen.extend(leftovers(tmp_path))  # the temporary file, while it is written
        return f.write(b"data")

    io.write_atomic(tmp_path / name, write)
    assert [p.name for p in tmp_path.iterdir()] == [name] and (tmp_path / name).read_bytes() == b"data"
    [temp] = seen
    assert len(os.fsencode(temp)) <= 255 and temp.startswith(f".{name[:kept]}.") and temp.endswith(".tmp")
    source = tmp_path / "in.png"
    Image.new("RGB", (2, 2)).save(source)
    assert main(["encode", str(source), "-o", str(tmp_path / name), "--force"]) == 0, capsys.readouterr().err
    assert kmz.open(tmp_path / name).size == (2, 2)


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
    with pytest.raises(kmz.WriteError, match=rf"^{out}: cannot write \(no space left on device\)$"):
        io.write_bytes(out, b"\0" * (1 << 20))
    assert list(tiny_tmpfs.iterdir()) == []
    # Through the CLI: 131,072 pixels of 256 grey levels, so 8 bits per index (128 KiB)
    # and no k-means: the .kmz cannot fit in 64 KiB.
    source = tiny_tmpfs.parent / "grey.png"
    Image.fromarray(np.arange(256 * 512, dtype=np.uint32).reshape(256, 512).astype(np.uint8)).save(source)
    assert main(["encode", str(source), "-k", "256", "-o", str(out)]) == 1
    assert capsys.readouterr().err == f"kmz: error: {out}: cannot write (no space left on device)\n"
    assert list(tiny_tmpfs.iterdir()) == []


def test_enospc_simulated(tmp_path, monkeypatch):
    """The same path without a mount: fsync reports the full disk, as on NFS or ext4 delalloc."""
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(kmz.WriteError, match=r"a.kmz: cannot write \(no space left on device\)$"):
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
    with pytest.raises(kmz.WriteError, match=rf"^{out}: cannot write \((read-only file system|operation not permitted|permission denied)\)$"):
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
    # In short sleeps: a SIGINT may be delivered to one of numpy's BLAS threads, and
    # one long sleep in this thread would not wake to see it.
    for _ in range(1200):
        time.sleep(0.05)
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


# No-clobber is atomic ------------------------------------------------------------


@pytest.fixture
def appearing(monkeypatch):
    """Make a file appear at `path` while the next encode quantizes: as another process
    writing the same output would."""
    real = kmz.image.quantize

    def arrange(path, content=b"written meanwhile"):
        def quantize_then_appear(*args, **kwargs):
            result = real(*args, **kwargs)
            Path(path).write_bytes(content)
            return result

        monkeypatch.setattr(kmz.image, "quantize", quantize_then_appear)

    return arrange


def test_a_file_appearing_during_the_encode_is_kept(tmp_path, capsys, appearing):
    source, out = tmp_path / "a.png", tmp_path / "a.kmz"
    _noise_png(source, 16)
    appearing(out)
    assert main(["encode", str(source), "-k", "4"]) == 1
    assert capsys.readouterr() == ("", f"kmz: error: {out}: exists (use --force to replace it)\n")
    assert out.read_bytes() == b"written meanwhile"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.kmz", "a.png"]


def test_with_force_it_is_replaced(tmp_path, capsys, appearing):
    source, out = tmp_path / "a.png", tmp_path / "a.kmz"
    _noise_png(source, 16)
    appearing(out)
    assert main(["encode", str(source), "-k", "4", "--force"]) == 0
    assert kmz.open(out).k == 4 and leftovers(tmp_path) == []


def test_save_without_force_is_atomic_too(tmp_path, monkeypatch):
    out = tmp_path / "a.png"
    image = kmz.KmzImage(np.zeros((1, 3), np.uint8), np.zeros((2, 2), np.uint16))
    real_save = Image.Image.save

    def appear_while_writing(self, *args, **kwargs):
        real_save(self, *args, **kwargs)
        out.write_bytes(b"theirs")

    monkeypatch.setattr(Image.Image, "save", appear_while_writing)
    with pytest.raises(kmz.OutputExistsError, match=r"a.png: exists \(use --force to replace it\)$"):
        image.save(out, force=False)
    assert out.read_bytes() == b"theirs" and leftovers(tmp_path) == []


@pytest.mark.parametrize("exists", [False, True])
def test_without_hard_links_the_last_check_decides(tmp_path, monkeypatch, exists):
    def no_links(source, target):
        raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(os, "link", no_links)  # as on FAT
    out = tmp_path / "a.kmz"
    if exists:
        out.write_bytes(b"old")
        with pytest.raises(kmz.OutputExistsError):
            io.write_bytes(out, b"new", force=False)
        assert out.read_bytes() == b"old"
    else:
        io.write_bytes(out, b"new", force=False)
        assert out.read_bytes() == b"new"
    assert leftovers(tmp_path) == []


# Ctrl-C ------------------------------------------------------------------------------


INTERRUPTED_IMPORT = """
import builtins, os, signal, sys
real_import = builtins.__import__
def interrupting_import(name, *args, **kwargs):
    if name == "numpy":  # kmz's first heavy import: Ctrl-C while it loads
        builtins.__import__ = real_import
        os.kill(os.getpid(), signal.SIGINT)
    return real_import(name, *args, **kwargs)
builtins.__import__ = interrupting_import
import kmz_launch  # the `kmz` command's entry point
sys.exit(kmz_launch.main())
"""


def test_ctrl_c_while_kmz_is_imported_is_one_line_and_130(tmp_path):
    done = subprocess.run([sys.executable, "-c", INTERRUPTED_IMPORT, "info", str(tmp_path / "x.kmz")],
                          capture_output=True, text=True, env=ENV, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "kmz: interrupted\n")


def test_the_kmz_command_is_the_launcher():
    with open(ROOT / "pyproject.toml", "rb") as f:
        assert tomllib.load(f)["project"]["scripts"]["kmz"] == "kmz_launch:main"


def test_ctrl_c_during_pillow_io_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    source = tmp_path / "a.png"
    _noise_png(source, 16)
    kmz.encode(source, k=4).save(tmp_path / "a.kmz")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(Image, "open", interrupted)  # while Pillow reads
        assert main(["encode", str(source), "-o", str(tmp_path / "b.kmz")]) == 130
    assert capsys.readouterr() == ("", "kmz: interrupted\n")
    monkeypatch.setattr(Image.Image, "save", interrupted)  # while Pillow writes, into the temporary file
    assert main(["decode", str(tmp_path / "a.kmz"), "-o", str(tmp_path / "b.png")]) == 130
    assert capsys.readouterr() == ("", "kmz: interrupted\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.kmz", "a.png"]


def test_sigint_while_writing_removes_the_temporary_file(tmp_path):
    source = tmp_path / "noise.png"
    _noise_png(source, 64)
    process = subprocess.Popen([sys.executable, "-c", SLOW_FSYNC_ENCODE, "encode", str(source), "-k", "16"],
                               env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_for(lambda: leftovers(tmp_path), 120), "no temporary file appeared"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert (process.returncode, out, err) == (130, "", "kmz: interrupted\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noise.png"]
