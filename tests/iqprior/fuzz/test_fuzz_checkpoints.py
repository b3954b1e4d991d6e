"""Fuzz the checkpoint reader and the TorchScript reader: tensors, or one CheckpointError, always bounded."""
from __future__ import annotations

import collections
import importlib.util
import io
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from iqprior.checkpoint import CheckpointError, safe_load
from iqprior.torchscript import read_scripted_tensors

FUZZ = settings.get_profile("iqprior-fuzz")


def _layouts():
    spec = importlib.util.spec_from_file_location("checkpoint_layouts",
                                                  Path(__file__).resolve().parents[2] / "checkpoint_layouts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


L = _layouts()


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


SEEDS = [_saved({"w": torch.arange(6.0).view(2, 3), "b": torch.zeros(2, dtype=torch.int64)}),
         _saved({"params_ema": {"a": torch.ones(3)}, "epoch": 3, "best": 1.5}),
         _saved(collections.OrderedDict(x=torch.tensor([1, 2], dtype=torch.uint8)))]
# Not fuzzed: the pre-1.6 (non-zip) format. torch's own legacy reader allocates each storage's declared size
# (and a pickle string's declared length) before reading it, so a mutated legacy file can ask for GiBs: left to
# torch and the OS, reported as one CheckpointError line (docs/security.md, "Known limits").


@st.composite
def mutated(draw, seeds):
    buf = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(buf) - 1))
        buf[at:at + 4] = draw(st.binary(min_size=1, max_size=4))
    if draw(st.booleans()):
        buf = buf[:draw(st.integers(0, len(buf)))]
    return bytes(buf)


def _read(reader, path):
    try:
        out = reader(path)
    except CheckpointError as e:
        text = str(e).strip()
        assert text and "\n" not in text and not any(w in text.lower() for w in ("memoryerror", "allocate")), repr(e)
        return None
    return out


def _recompressed(data: bytes, methods: list[int]) -> bytes:
    """``data`` (a torch zip checkpoint) with its members rewritten under ``methods`` (cycled): compressed records
    inflate beyond the file's size, which the reader must refuse before inflating them (issue 33)."""
    try:
        src = zipfile.ZipFile(io.BytesIO(data))
        infos = src.infolist()
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as z:
            for i, info in enumerate(infos):
                z.writestr(info.filename, src.read(info.filename), compress_type=methods[i % len(methods)])
        return out.getvalue()
    except Exception:  # noqa: BLE001 -- a mutation that broke the zip: keep it as it is
        return data


compressed = st.builds(_recompressed, mutated(SEEDS) | st.sampled_from(SEEDS),
                       st.lists(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                                                 zipfile.ZIP_LZMA]), min_size=1, max_size=4))


@FUZZ
@given(st.one_of(mutated(SEEDS), st.binary(max_size=600), compressed))
def test_checkpoint_reader(bounded, tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "x.pth"
    path.write_bytes(data)
    if not data:
        with pytest.raises(CheckpointError):
            safe_load(path)
        return
    with bounded("safe_load"):
        _read(safe_load, path)


# -- TorchScript-shaped archives built from parts -------------------------------------------
storage_types = st.sampled_from([torch.FloatStorage, torch.LongStorage, torch.ByteStorage, torch.HalfStorage,
                                 torch.BoolStorage, collections.OrderedDict, int])
small = st.integers(-3, 40)


@st.composite
def tensor_refs(draw):
    ndim = draw(st.integers(0, 3))
    size = tuple(draw(st.lists(small, min_size=ndim, max_size=ndim)))
    stride = tuple(draw(st.lists(small, min_size=ndim, max_size=ndim)))
    key = draw(st.sampled_from(["0", "1", "2"]))
    storage = L.StorageRef(key, draw(storage_types), draw(small))
    return L.TensorRef(storage, draw(small), size, stride)


leaves = st.one_of(st.none(), st.integers(), st.text(max_size=5), tensor_refs())
trees = st.recursive(leaves, lambda inner: st.one_of(
    st.dictionaries(st.text(max_size=4), inner, max_size=4), st.lists(inner, max_size=3)), max_leaves=12)
records = st.dictionaries(st.sampled_from(["0", "1", "2"]), st.binary(max_size=64), max_size=3)


@FUZZ
@given(trees, records, st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2]),
       st.integers(0, 40))
def test_torchscript_reader_on_built_archives(bounded, tmp_path_factory, tree, recs, method, shared):
    if shared:  # share a subtree many times over (a DAG)
        for _ in range(shared):
            tree = {"a": tree, "b": tree}
    path = tmp_path_factory.mktemp("fuzz") / "ts.pt"
    L.write_scripted(path, tree, recs, compress={f"archive/data/{k}": method for k in recs})
    with bounded("read_scripted_tensors"):
        out = _read(read_scripted_tensors, path)
    if out is not None:
        assert all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in out.items())
        for v in out.values():  # every tensor reads inside its record
            v.sum()


TS_SEED = L.scripted_pickle({"w": L.TensorRef(L.StorageRef("0", torch.FloatStorage, 6), 0, (2, 3), (3, 1)),
                             "m": {"b": L.TensorRef(L.StorageRef("0", torch.FloatStorage, 6), 4, (2,), (1,))}})


@FUZZ
@given(mutated([TS_SEED]), st.binary(max_size=32))
def test_torchscript_reader_on_mutated_pickles(bounded, tmp_path_factory, pkl, record):
    path = tmp_path_factory.mktemp("fuzz") / "ts.pt"
    L.write_scripted(path, data_pkl=pkl, records={"0": record})
    with bounded("read_scripted_tensors"):
        _read(read_scripted_tensors, path)
