"""Atomic writes: directory fsynced, umask untouched, no mode widening, destination symlinks never followed."""
import os
import stat

import pytest
import torch

from iqprior import weights
from iqprior.cli import main
from iqprior.io import atomic_write_bytes


def test_directory_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(stat.S_ISDIR(os.fstat(fd).st_mode)) or real(fd))
    atomic_write_bytes(tmp_path / "a.bin", b"x")
    assert synced[-1] is True and False in synced  # the file first, its directory last


def test_process_umask_is_never_changed(tmp_path, monkeypatch):
    def no_umask(mask):
        raise AssertionError("os.umask called: it is process-wide, a race with other threads")

    monkeypatch.setattr(os, "umask", no_umask)
    p = atomic_write_bytes(tmp_path / "a.bin", b"x")
    mode = stat.S_IMODE(p.stat().st_mode)
    assert mode & 0o600 == 0o600 and not mode & 0o111


def test_replacing_a_private_file_keeps_it_private(tmp_path):
    p = tmp_path / "secret.json"
    p.write_bytes(b"old")
    os.chmod(p, 0o600)
    atomic_write_bytes(p, b"new")
    assert p.read_bytes() == b"new" and stat.S_IMODE(p.stat().st_mode) == 0o600


def test_destination_symlink_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    link = tmp_path / "out.txt"
    link.symlink_to(victim)
    atomic_write_bytes(link, b"new")
    assert victim.read_bytes() == b"precious"
    assert not link.is_symlink() and link.read_bytes() == b"new"


def _good_nu2net(tmp_path, layouts):
    from adapters.nu2net import build_nu2net

    (tmp_path / "good").mkdir(exist_ok=True)
    return layouts.write_runner_save(tmp_path / "good" / "NU2Net_ckpt.pth", build_nu2net().net.state_dict(), 1)


def test_weights_add_never_writes_through_a_destination_symlink(tmp_path, layouts, capsys):
    good = _good_nu2net(tmp_path, layouts)
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"precious")
    dest = weights.cache_dir() / good.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.symlink_to(victim)
    assert main(["weights", "add", str(good)]) == 0
    assert victim.read_bytes() == b"precious"
    assert not dest.is_symlink() and dest.read_bytes() == good.read_bytes()


def test_weights_add_verifies_the_copy_it_installs(tmp_path, layouts, monkeypatch, capsys):
    import iqprior.cli.weights as cli_weights

    good = _good_nu2net(tmp_path, layouts)
    checked = []
    real = cli_weights.check_file
    monkeypatch.setattr(cli_weights, "check_file", lambda p: checked.append(os.path.abspath(p)) or real(p))
    assert main(["weights", "add", str(good)]) == 0
    assert checked and all(p != str(good) for p in checked), checked  # the copy, not the source
    # a copy that fails its check is never installed
    torch.save({"net": {"conv.weight": torch.zeros(3)}}, good)
    (weights.cache_dir() / good.name).unlink()
    assert main(["weights", "add", str(good)]) == 1
    assert not (weights.cache_dir() / good.name).exists()
    assert not [p for p in weights.cache_dir().iterdir() if p.name.startswith(".")]  # no staging left behind


@pytest.mark.parametrize("module", ["iqprior/faces/pipeline.py", "iqprior/bench/runner.py"])
def test_no_plain_writes_in_output_modules(module):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / module).read_text()
    for plain in (".write_text(", ".write_bytes(", "shutil.copyfile(", 'open(out, "w'):
        assert plain not in text, f"{module} uses {plain} (write through iqprior.io.atomic_path)"


def test_a_long_legal_name_gets_a_temporary_name_within_the_limit(tmp_path):
    # 240 bytes is a legal file name; ".<name>.<12 hex>.tmp" used to be 258 (ENAMETOOLONG)
    name = "é" * 100 + "x" * 36 + ".png"   # 240 bytes in UTF-8
    assert len(name.encode()) == 240
    p = atomic_write_bytes(tmp_path / name, b"data")
    assert p.read_bytes() == b"data" and sorted(x.name for x in tmp_path.iterdir()) == [name]
