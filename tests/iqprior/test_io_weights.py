import hashlib

import cv2
import numpy as np
import pytest
import torch

from iqprior import weights
from iqprior.cli import main
from iqprior.io import ImageReadError, read_image, write_image


def test_read_image_conversions(tmp_path):
    img = np.zeros((16, 20, 4), np.uint8)
    img[..., 2] = 255      # red in BGR(A)
    img[..., 3] = 255      # opaque
    img[:8, :, 3] = 0      # transparent top half -> white
    cv2.imwrite(str(tmp_path / "rgba.png"), img)
    x = read_image(tmp_path / "rgba.png")
    assert x.shape == (3, 16, 20) and x.dtype == torch.float32
    assert torch.allclose(x[:, 12, 5], torch.tensor([1.0, 0.0, 0.0]))   # red, RGB order
    assert torch.allclose(x[:, 2, 5], torch.ones(3))                    # composited on white
    cv2.imwrite(str(tmp_path / "g16.png"), np.full((10, 10), 65535 // 2, np.uint16))
    assert torch.allclose(read_image(tmp_path / "g16.png"), torch.full((3, 10, 10), 0.5), atol=1e-4)
    with pytest.raises(ImageReadError, match="above"):
        read_image(tmp_path / "g16.png", max_pixels=50)


def test_write_image_clamps_and_is_atomic(tmp_path):
    x = torch.tensor([-1.0, 0.5, 2.0]).view(3, 1, 1).expand(3, 9, 9)
    path = write_image(tmp_path / "o.png", x)
    back = read_image(path, min_side=1)
    assert torch.allclose(back[:, 0, 0], torch.tensor([0.0, 128 / 255, 1.0]))
    assert [p.name for p in tmp_path.iterdir()] == ["o.png"]  # no temp file left


def _registered(monkeypatch, tmp_path, payload, sha):
    src = tmp_path / "src" / "fake.pth"
    src.parent.mkdir()
    src.write_bytes(payload)
    entry = weights.WeightFile("fake.pth", src.as_uri(), sha, "test")
    monkeypatch.setitem(weights.REGISTRY, "fake.pth", entry)
    monkeypatch.delenv("IQPRIOR_OFFLINE", raising=False)
    return src


def test_download_with_checksum_into_cache(monkeypatch, tmp_path):
    payload = b"weights" * 1000
    _registered(monkeypatch, tmp_path, payload, hashlib.sha256(payload).hexdigest())
    path = weights.resolve("fake.pth", progress=False)
    assert path == weights.cache_dir() / "fake.pth" and path.read_bytes() == payload
    assert weights.verify("fake.pth")[2] is True
    assert weights.resolve("fake.pth") == path  # cached, no second download


def test_checksum_mismatch_discards_file(monkeypatch, tmp_path):
    _registered(monkeypatch, tmp_path, b"tampered", "0" * 64)
    with pytest.raises(ValueError, match="sha256 mismatch"):
        weights.resolve("fake.pth", progress=False)
    assert not (weights.cache_dir() / "fake.pth").exists()
    assert not list(weights.cache_dir().glob("*.tmp"))


def test_env_var_points_at_local_files(monkeypatch, tmp_path):
    local = tmp_path / "mine"
    local.mkdir()
    (local / "codeformer.pth").write_bytes(b"x")
    monkeypatch.setenv("IQPRIOR_WEIGHTS", str(local))
    assert weights.resolve("codeformer.pth") == local / "codeformer.pth"


def test_offline_error_names_file_url_and_dir():
    with pytest.raises(weights.WeightsUnavailableError) as err:
        weights.resolve("codeformer.pth")
    msg = str(err.value)
    assert "codeformer.pth" in msg and "github.com/sczhou/CodeFormer" in msg and str(weights.cache_dir()) in msg
    with pytest.raises(KeyError, match="did you mean"):
        weights.get("codeformer.pt")


def test_unreachable_url_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("IQPRIOR_OFFLINE", raising=False)
    entry = weights.WeightFile("gone.pth", (tmp_path / "nope.pth").as_uri(), None, "t")
    monkeypatch.setitem(weights.REGISTRY, "gone.pth", entry)
    with pytest.raises(weights.WeightsUnavailableError, match="Download it from"):
        weights.resolve("gone.pth", progress=False)


def test_weights_cli(capsys, monkeypatch, tmp_path):
    assert main(["weights", "list"]) == 0
    assert "codeformer.pth" in capsys.readouterr().out
    assert main(["weights", "path", "codeformer.pth"]) == 1
    f = tmp_path / "codeformer.pth"
    f.write_bytes(b"abc")
    assert main(["weights", "add", str(f)]) == 1  # `add` checks that the file loads into CodeFormer
    assert "refused" in capsys.readouterr().out and weights.find("codeformer.pth") is None
    weights.cache_dir().mkdir(parents=True, exist_ok=True)
    (weights.cache_dir() / "codeformer.pth").write_bytes(b"abc")
    assert main(["weights", "verify", "codeformer.pth"]) == 0
    assert "no registered sha256" in capsys.readouterr().out
