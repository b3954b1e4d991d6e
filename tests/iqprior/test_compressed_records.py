"""A torch zip checkpoint whose records are compressed is refused before torch inflates them (issue 33, item 1)."""
import io
import zipfile

import pytest
import torch

import iqprior.checkpoint as checkpoint
from iqprior.checkpoint import CheckpointError, safe_load


def _recompressed(path, obj, method=zipfile.ZIP_DEFLATED, which="/data/"):
    buf = io.BytesIO()
    torch.save(obj, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            out.writestr(info.filename, src.read(info.filename),
                         compress_type=method if which in info.filename else zipfile.ZIP_STORED)
    return path


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_compressed_record_is_refused_before_torch_reads_it(tmp_path, monkeypatch, method):
    # 2 MB of zeros deflates to ~2 kB: the file's size no longer bounds what loading it allocates
    path = _recompressed(tmp_path / "bomb.pth", {"w": torch.zeros(500_000)}, method)
    assert path.stat().st_size < 20_000
    monkeypatch.setattr(checkpoint, "_TORCH_LOAD", lambda *a, **k: pytest.fail("torch.load reached"))
    with pytest.raises(CheckpointError, match="compressed"):
        safe_load(path)


def test_compressed_data_pkl_is_refused_too(tmp_path):
    path = _recompressed(tmp_path / "pkl.pth", {"w": torch.ones(3)}, which="data.pkl")
    with pytest.raises(CheckpointError, match="compressed"):
        safe_load(path)


def test_stored_checkpoints_still_load(tmp_path):
    torch.save({"w": torch.arange(4.0)}, tmp_path / "ok.pth")
    assert torch.equal(safe_load(tmp_path / "ok.pth")["w"], torch.arange(4.0))


def test_a_file_object_loaded_by_a_dependency_is_checked_too(tmp_path):
    from iqprior.guarded import guarded_loads

    path = _recompressed(tmp_path / "bomb.pth", {"w": torch.zeros(500_000)})
    with guarded_loads(), open(path, "rb") as f, pytest.raises(CheckpointError, match="compressed"):
        torch.load(f)
    torch.save({"w": torch.ones(2)}, tmp_path / "ok.pth")
    with guarded_loads(), open(tmp_path / "ok.pth", "rb") as f:
        assert torch.equal(torch.load(f)["w"], torch.ones(2))


def test_a_legacy_pickle_declaring_more_than_the_file_is_refused_first(tmp_path):
    # found by `make fuzz`: 5 bytes (BINUNICODE of 1 GiB) made torch's legacy reader reserve 1 GiB first
    path = tmp_path / "legacy.pth"
    path.write_bytes(b"X\x00\x00\x00A")
    with pytest.raises(CheckpointError, match="more data than the file holds"):
        safe_load(path)


def test_legacy_checkpoints_still_load(tmp_path):
    torch.save({"w": torch.arange(3.0), "n": 7}, tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    obj = safe_load(tmp_path / "old.pth")
    assert torch.equal(obj["w"], torch.arange(3.0)) and obj["n"] == 7
