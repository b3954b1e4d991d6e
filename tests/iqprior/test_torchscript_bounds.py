"""The TorchScript reader does bounded work and memory, and every failure is one CheckpointError."""
import subprocess
import sys
import zipfile

import pytest
import torch

from iqprior.checkpoint import CheckpointError, safe_load
from iqprior.torchscript import read_scripted_tensors


def _floats(n):
    return torch.arange(n, dtype=torch.float32).numpy().tobytes()


def test_plain_tensors_read(tmp_path, layouts):
    s = layouts.StorageRef("0", numel=6)
    obj = {"w": layouts.TensorRef(s, 0, (2, 3), (3, 1)), "b": layouts.TensorRef(s, 4, (2,), (1,))}
    got = read_scripted_tensors(layouts.write_scripted(tmp_path / "a.pt", obj, {"0": _floats(6)}))
    assert torch.equal(got["w"], torch.arange(6.0).view(2, 3)) and torch.equal(got["b"], torch.tensor([4.0, 5.0]))


def _read_elsewhere(path) -> str:
    """Read ``path`` in a child process (a hang on a broken reader is a failure, not a stuck suite)."""
    code = ("import sys; from iqprior.torchscript import read_scripted_tensors\n"
            "try:\n    print('ok', len(read_scripted_tensors(sys.argv[1])))\n"
            "except ValueError as e:\n    print('error', e)\n")
    try:
        out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading {path.name} did not finish in 90 s")
    assert out.returncode == 0, out.stderr[-500:]
    return out.stdout.strip()


def test_exponential_dag_finishes(tmp_path, layouts):
    """A 60-level DAG of shared dicts has 2**60 paths: the walk must not follow them all."""
    d = {}
    for _ in range(60):
        d = {"a": d, "b": d}
    assert _read_elsewhere(layouts.write_scripted(tmp_path / "dag.pt", d)) == "ok 0"


def test_exponential_dag_with_a_tensor_is_capped(tmp_path, layouts):
    d = {"t": layouts.TensorRef(layouts.StorageRef("0", numel=1), 0, (1,), (1,))}
    for _ in range(60):
        d = {"a": d, "b": d}
    got = _read_elsewhere(layouts.write_scripted(tmp_path / "dag.pt", d, {"0": _floats(1)}))
    assert got.startswith("error") and "entries" in got, got


def test_cycle_is_a_checkpoint_error(tmp_path, layouts):
    d = {}
    d["self"] = d
    with pytest.raises(CheckpointError, match="cycle"):
        read_scripted_tensors(layouts.write_scripted(tmp_path / "cycle.pt", d))


def test_deep_nesting_is_a_checkpoint_error(tmp_path, layouts):
    d = {}
    for _ in range(400):
        d = {"a": d}
    with pytest.raises(CheckpointError, match="deep"):
        read_scripted_tensors(layouts.write_scripted(tmp_path / "deep.pt", d))


def test_short_record_is_truncated_not_uninitialised(tmp_path, layouts):
    s = layouts.StorageRef("0", numel=1000)
    path = layouts.write_scripted(tmp_path / "short.pt", {"w": layouts.TensorRef(s, 0, (1000,), (1,))},
                                  {"0": _floats(4)})
    with pytest.raises(CheckpointError, match="truncated"):
        read_scripted_tensors(path)


def test_negative_or_bogus_geometry_is_refused(tmp_path, layouts):
    s = layouts.StorageRef("0", numel=4)
    for size, stride, offset in [((4,), (-1,), 3), ((2, 2), (2,), 0), ((-4,), (1,), 0), ((4,), (1,), -1)]:
        path = layouts.write_scripted(tmp_path / "g.pt", {"w": layouts.TensorRef(s, offset, size, stride)},
                                      {"0": _floats(4)})
        with pytest.raises(CheckpointError):
            read_scripted_tensors(path)


def test_compressed_member_is_refused_before_reading(tmp_path, layouts, monkeypatch):
    s = layouts.StorageRef("0", numel=1)
    path = layouts.write_scripted(tmp_path / "bz.pt", {"w": layouts.TensorRef(s, 0, (1,), (1,))},
                                  {"0": b"\0" * 200_000_000}, compress={"archive/data/0": zipfile.ZIP_BZIP2})
    assert path.stat().st_size < 10_000
    reads = []
    real = zipfile.ZipFile.read
    monkeypatch.setattr(zipfile.ZipFile, "read", lambda self, name, *a: reads.append(str(name)) or real(self, name, *a))
    with pytest.raises(CheckpointError, match="compress"):
        read_scripted_tensors(path)
    assert not any(r.endswith("data/0") for r in reads)


def test_storage_type_without_dtype_is_a_checkpoint_error(tmp_path, layouts):
    import collections

    s = layouts.StorageRef("0", storage_type=collections.OrderedDict, numel=1)
    path = layouts.write_scripted(tmp_path / "t.pt", {"w": layouts.TensorRef(s, 0, (1,), (1,))}, {"0": _floats(1)})
    with pytest.raises(CheckpointError):
        read_scripted_tensors(path)
    with pytest.raises(CheckpointError):
        safe_load(path)


def test_zip_with_undecodable_member_name_is_a_checkpoint_error(tmp_path):
    """Found by fuzzing: zipfile raises UnicodeDecodeError (not BadZipFile) on a UTF-8-flagged bad name."""
    path = tmp_path / "bad.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/\u00e9.pkl", b"x")
    path.write_bytes(path.read_bytes().replace("\u00e9".encode(), b"\xb7\xb7"))
    with pytest.raises(CheckpointError):
        safe_load(path)


def test_memo_index_bomb_is_refused_before_unpickling(tmp_path, layouts):
    """Found by fuzzing (the run was OOM-killed): CPython's unpickler sizes its memo by the largest PUT index."""
    import resource
    import struct

    bomb = b"\x80\x02N" + b"r" + struct.pack("<I", 0x7FFFFF00) + b"."
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match="memo index"):
        read_scripted_tensors(layouts.write_scripted(tmp_path / "memo.pt", data_pkl=bomb))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # kB
