"""``--precision fp16`` on a model that overflows in fp16: redone in fp32 with one warning, never NaN."""
from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
import torch

import adapters
from iqprior.cli import main
from iqprior.precision_guard import PrecisionGuard


def _overflowing():
    """A tiny Compact whose first convolution is scaled so its features pass fp16's 65504."""
    model = adapters.create("auto", tiny=True, tiny_family="Compact").eval()
    with torch.no_grad():
        first = next(m for m in model.net.modules() if isinstance(m, torch.nn.Conv2d))
        first.weight.mul_(1e5)
    return model


def test_guard_falls_back_once_per_input():
    model = _overflowing()
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        ref = model(x)
        assert torch.isfinite(ref).all()
        model.set_precision("fp16")
        assert not torch.isfinite(model(x)).all()  # the model does overflow in fp16
        guard = PrecisionGuard(model)
        with pytest.warns(RuntimeWarning, match="redone in fp32"):
            y = guard(x)
        assert torch.equal(y, ref) and guard.fallbacks == 1
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            guard(x)  # the same input stays in fp32: no second fallback, no warning
        assert guard.fallbacks == 1
        guard.begin()
        assert model.precision == "fp16"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert torch.equal(guard(x), ref)
        assert guard.fallbacks == 2


def test_cli_counts_fallbacks(tmp_path, capsys):
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), (np.random.default_rng(i).random((40, 40, 3)) * 255).astype(
            np.uint8))
    saved = _overflowing().save_pretrained(tmp_path / "overflowing")
    out = tmp_path / "out"
    rc = main(["restore", str(tmp_path / "img0.png"), str(tmp_path / "img1.png"), "--model", "auto", "--checkpoint",
               str(saved), "--precision", "fp16", "--device", "cpu", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0 and "2 redone in fp32" in err, err
    for i in range(2):
        img = cv2.imread(str(out / f"img{i}.png"))
        assert img is not None and img.shape == (80, 80, 3)
