"""Fuzz the readers that came with ``auto``, saved folders, ONNX and the demo (issue 33): each case ends in a
result or one clear error, within the time and memory bounds of ``conftest.py``.

- the ``auto`` reader (safetensors and ``.pth``) and spandrel's build of what it reads;
- a saved folder's ``config.json`` (options of ``minires+`` and ``auto+``);
- the ONNX runner (metadata values and mutated bytes of a valid file);
- the demo's upload guard (what ``DemoService.load`` and the URL refusal see).
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

FUZZ = settings.get_profile("iqprior-fuzz")
ERRORS = (ValueError, TypeError, FileNotFoundError)  # ValueError includes CheckpointError and ImageReadError


def _one_line(e: BaseException) -> None:
    text = str(e).strip()
    assert text and "\n" not in text and not any(w in text.lower() for w in ("memoryerror", "can't allocate")), repr(e)


@st.composite
def mutated(draw, seed: bytes):
    buf = bytearray(seed)
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(buf) - 1))
        buf[at:at + 4] = draw(st.binary(min_size=1, max_size=4))
    if draw(st.booleans()):
        buf = buf[:draw(st.integers(1, len(buf)))]
    return bytes(buf)


# -- auto: safetensors / .pth files whose keys and shapes size the network ----------------------------
@pytest.fixture(scope="module")
def compact_state():
    pytest.importorskip("spandrel")
    from adapters.auto.tiny import tiny_network

    with torch.random.fork_rng():
        return {k: v.clone().contiguous() for k, v in tiny_network("Compact").state_dict().items()}


def _safetensors_bytes(state) -> bytes:
    from safetensors.torch import save

    return save(state)


index = st.integers(0, 10**7)
# the stored tensors stay small (a first dim up to 5000, the others up to 4): what they imply need not be
shapes = st.tuples(st.integers(0, 5000), st.lists(st.integers(0, 4), max_size=3)).map(lambda t: [t[0], *t[1]])
key_edits = st.lists(st.tuples(st.sampled_from(["body.{}.weight", "body.{}.bias"]), index, shapes), max_size=3)


@FUZZ
@given(key_edits, st.booleans(), st.data())
def test_auto_reader_and_build(bounded, tmp_path_factory, compact_state, edits, mutate, data):
    from adapters.auto.reading import load_descriptor, read_state_dict

    state = dict(compact_state)
    for pattern, i, shape in edits:  # key indices and shapes that size the network spandrel builds
        state[pattern.format(i)] = torch.zeros(shape[:1] if pattern.endswith("bias") else shape)
    raw = _safetensors_bytes(state)
    if mutate:
        raw = data.draw(mutated(raw))
    path = tmp_path_factory.mktemp("fuzz") / "m.safetensors"
    path.write_bytes(raw)
    with bounded("auto reader"):
        try:
            load_descriptor(read_state_dict(path), str(path))
        except ERRORS as e:
            _one_line(e)


# -- saved folders: config.json options size the network before a weight is read -------------------------
option_values = st.one_of(st.integers(-2**40, 2**40), st.floats(allow_nan=True), st.text(max_size=8), st.none(),
                          st.lists(st.integers(-10, 10**6), max_size=4), st.booleans())


@pytest.fixture(scope="module")
def saved_folders(tmp_path_factory):
    pytest.importorskip("spandrel")
    import adapters
    from adapters.auto.tiny import write_tiny_file

    root = tmp_path_factory.mktemp("saved")
    adapters.create("minires+", tiny=True).save_pretrained(root / "minires+")
    adapters.create("auto+", checkpoint=write_tiny_file("Compact", root / "c.pth")).save_pretrained(root / "auto+")
    return root


@FUZZ
@given(st.sampled_from(["minires+", "auto+"]), st.dictionaries(
    st.sampled_from(["width", "blocks", "condition_shape", "condition_at", "mode", "architecture", "hyperparameters"]),
    option_values, max_size=3))
def test_saved_folder_config(bounded, tmp_path_factory, saved_folders, name, edits):
    import shutil

    import adapters

    folder = tmp_path_factory.mktemp("fuzz") / name
    shutil.copytree(saved_folders / name, folder)
    config = json.loads((folder / "config.json").read_text())
    config["options"].update(edits)
    (folder / "config.json").write_text(json.dumps(config))
    with bounded("create from a saved folder"):
        try:
            adapters.create(name, checkpoint=folder)
        except ERRORS as e:
            _one_line(e)


# -- the ONNX runner ------------------------------------------------------------------------------------
def _hostile_onnx():
    spec = importlib.util.spec_from_file_location("hostile_onnx", Path(__file__).parents[1] / "export" / "hostile_onnx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


meta_values = st.one_of(st.text(max_size=12), st.integers(-2**63, 2**63).map(str), st.sampled_from(
    ["[100000, 1, true]", "[0, 99999999, false]", "[1, 2]", "{}", '{"fidelity": 1e308}', "[" * 3000, "NaN", "1e30",
     "face", "image", "true", ""]))
META_KEYS = ["size_requirements", "native_size", "task", "scale", "levels", "controls", "adapter", "random_weights"]


@FUZZ
@given(st.dictionaries(st.sampled_from(META_KEYS), meta_values, max_size=4),
       st.sampled_from([("B", 3, "H", "W"), (1, 3, 8, 8), (1, 3, 100000, 100000), (1, 3, 0, 8)]),
       st.booleans(), st.data())
def test_onnx_runner(bounded, tmp_path_factory, monkeypatch, meta, dims, mutate, data):
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from iqprior.export import OnnxModel

    monkeypatch.setenv("IQPRIOR_ONNX_SECONDS", "5")
    monkeypatch.setenv("IQPRIOR_ONNX_MEMORY_MB", "512")
    model = _hostile_onnx().identity({f"iqprior.{k}": v for k, v in meta.items()}, dims=dims)
    raw = model.SerializeToString()
    if mutate:
        raw = data.draw(mutated(raw))
    path = tmp_path_factory.mktemp("fuzz") / "m.onnx"
    path.write_bytes(raw)
    del onnx
    with bounded("OnnxModel"):
        try:
            m = OnnxModel(path, threads=1)
            y = m(torch.rand(1, 3, 8, 8))
        except ERRORS as e:
            _one_line(e)
            return
    assert isinstance(y, torch.Tensor)


# -- the demo's upload guard ------------------------------------------------------------------------------
@FUZZ
@given(st.one_of(st.binary(max_size=512), st.builds(lambda m, b: m + b, st.sampled_from(
    [b"\x89PNG\r\n\x1a\n", b"II*\x00", b"#?RADIANCE\n", b"GIF89a", b"\xff\xd8\xff"]), st.binary(max_size=512))),
    st.text(max_size=40))
def test_demo_upload_guard(bounded, tmp_path_factory, data, name):
    from iqprior.demo.limits import DEMO_MAX_PIXELS, _is_url
    from iqprior.demo.service import DemoService

    path = tmp_path_factory.mktemp("fuzz") / "upload.png"
    path.write_bytes(data)
    with bounded("DemoService.load"):
        try:
            x = DemoService.load(path, name or None)
        except ERRORS as e:
            _one_line(e)
            assert str(path) not in str(e)  # the visitor's name, not the server's path
            return
    assert x.shape[0] == 3 and x.shape[1] * x.shape[2] <= DEMO_MAX_PIXELS
    assert _is_url("https://" + name) and not _is_url(str(path))
