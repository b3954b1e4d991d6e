"""``iqprior demo`` without a browser: the bundled model, one code path with ``iqprior restore``, bad input."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch

import adapters
from iqprior.cli import main
from iqprior.demo.service import (
    BUNDLED_CHECKPOINT,
    BUNDLED_MODEL,
    REAL_CHECKPOINT,
    DemoService,
    bundled_recipe,
    check_level,
    real_model_available,
)
from iqprior.io import ImageReadError, read_image_array, write_image


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """The small fallback model (cheap on CPU): the page's mechanics do not depend on the model."""
    return DemoService(BUNDLED_MODEL, str(BUNDLED_CHECKPOINT), device="cpu", out_dir=tmp_path_factory.mktemp("demo-out"))


def test_default_serves_the_real_plus_model_and_says_what_it_is(tmp_path):
    """Without arguments the demo serves Real-ESRGAN's realesr-animevideov3 made "+" by ``iqprior bench real``
    (bundled with its licence and recipe); its level changes the output, as ``iqprior restore`` writes it."""
    ok, why = real_model_available()
    if not ok:
        pytest.skip(f"the real model cannot be served here: {why}")
    files = {p.name: p.stat().st_size for p in REAL_CHECKPOINT.iterdir()}
    assert {"config.json", "model.safetensors", "recipe.json", "LICENSE"} <= set(files)
    assert files["model.safetensors"] <= 10 * 2**20
    assert "BSD" in (REAL_CHECKPOINT / "LICENSE").read_text()
    recipe = bundled_recipe(REAL_CHECKPOINT)
    assert recipe["command"].startswith("iqprior bench real") and recipe["members_label"] == ["niqe", "brisque"]
    svc = DemoService(device="cpu", out_dir=tmp_path / "out")
    first = svc.choices[0]
    assert first.name == "auto+" and first.checkpoint == str(REAL_CHECKPOINT)
    assert "realesr-animevideov3" in first.description and "Real-ESRGAN" in first.description
    from iqprior.bench.real.photos import load_photo

    small = tmp_path / "small.png"    # x4 super-resolution: a small input (a textured crop of a held-out photo)
    write_image(small, torch.from_numpy(load_photo("skimage:chelsea.png", downscale=4).image[20:68, 30:78]).permute(2, 0, 1))
    outs = {}
    for level in (0, 9):
        r = svc.restore(small, level, scores=False)
        assert main(["restore", str(small), "--model", "auto+", "--checkpoint", str(REAL_CHECKPOINT), "--score",
                     str(level), "--device", "cpu", "--out", str(tmp_path / f"l{level}"), "--no-progress"]) == 0
        assert r.after.read_bytes() == (tmp_path / f"l{level}" / "small.png").read_bytes()
        outs[level] = read_image_array(r.after)
    assert outs[9].shape[:2] == (192, 192)
    assert np.abs(outs[0] - outs[9]).mean() * 255 > 1.0   # about 4 grey levels on this crop


def _png_header(side: int) -> bytes:
    """A PNG whose header declares ``side`` x ``side`` pixels and whose data cannot be decoded: only a reader that
    checks the header first refuses it for its size."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"not deflate data") + chunk(b"IEND", b"")


def test_bundled_model_is_small_trained_and_loads_as_an_adapter():
    files = {p.name: p.stat().st_size for p in BUNDLED_CHECKPOINT.iterdir()}
    assert {"config.json", "model.safetensors", "recipe.json"} <= set(files)
    assert files["model.safetensors"] <= 10 * 2**20
    model = adapters.create(BUNDLED_MODEL, checkpoint=BUNDLED_CHECKPOINT)
    emb = model.embeddings()[0].weight.detach()
    assert float(emb.abs().sum()) > 0, "the level embedding is still zero: the bundled model was never trained"
    info = bundled_recipe()
    assert info["n_images"] == len(info["images"]) >= 4
    assert info["labels"]["members"] == ["blur_effect", "blockiness"]


def test_output_equals_iqprior_restore_and_follows_the_level(service, face_paths, tmp_path):
    src = face_paths[0]
    outs = {}
    for level in (0, 9):
        r = service.restore(src, level, scores=False)
        rc = main(["restore", str(src), "--model", BUNDLED_MODEL, "--checkpoint", str(BUNDLED_CHECKPOINT),
                   "--score", str(level), "--device", "cpu", "--out", str(tmp_path / f"l{level}"), "--no-progress"])
        assert rc == 0
        cli = tmp_path / f"l{level}" / f"{src.stem}.png"
        assert r.after.read_bytes() == cli.read_bytes(), f"level {level}: the demo and `iqprior restore` differ"
        outs[level] = read_image_array(r.after)
    diff = np.abs(outs[0] - outs[9]).mean() * 255
    assert diff > 1.0, f"levels 0 and 9 differ by only {diff:.2f} grey levels on average"


def test_scores_and_sweep(service, face_paths):
    r = service.restore(face_paths[1], 9)
    assert 0.0 <= r.score_before <= 1.0 and 0.0 <= r.score_after <= 1.0
    s = service.sweep(face_paths[1])
    assert sorted(s.levels) == list(range(10)) and s.grid.is_file()
    same = read_image_array(s.levels[9])
    assert np.array_equal(same, read_image_array(r.after))  # the sweep's level 9 is the restore at level 9


@pytest.mark.parametrize("content, message", [
    (b"this is not an image", "not a decodable image"),
    (_png_header(11_000), "above the 4 MP limit"),   # the demo's own cap (iqprior.demo.limits), from the header
    (_png_header(30_000), "above the 100 MP limit|above the 4 MP limit"),
    (None, "not a decodable image"),
], ids=["text", "121MP-header", "900MP-header", "truncated"])
def test_bad_uploads_get_a_message_and_the_service_goes_on(service, face_paths, tmp_path, content, message):
    bad = tmp_path / "upload.png"
    bad.write_bytes(content if content is not None else face_paths[0].read_bytes()[:400])  # truncated PNG
    with pytest.raises(ImageReadError, match=message) as info:
        service.restore(bad, 9, name="holiday.png")
    assert str(tmp_path) not in str(info.value) and "holiday.png" in str(info.value)
    assert service.restore(face_paths[0], 5, scores=False).after.is_file()


@pytest.mark.parametrize("value", [-1, 10, 2.5, "x", None])
def test_level_must_be_an_integer_0_to_9(value):
    with pytest.raises(ValueError, match="level must be an integer 0..9"):
        check_level(value)


def test_arguments_are_checked_before_serving(capsys):
    assert main(["demo", "--checkpoint", "somewhere"]) == 1
    assert "--checkpoint needs --model" in capsys.readouterr().err
    assert main(["demo", "--model", "codeformr"]) == 1
    assert "did you mean 'codeformer'" in capsys.readouterr().err
    assert main(["demo", "--port", "70000"]) == 1
    assert "--port must lie in 1..65535" in capsys.readouterr().err


def test_minires_runs_any_size():
    model = adapters.create("minires+", width=4, blocks=1)
    for h, w in [(5, 7), (2, 2), (33, 16)]:
        y = model(torch.rand(1, 3, h, w), score=3)
        assert y.shape == (1, 3, h, w)
    with pytest.raises(ValueError, match="at least 2x2"):
        model(torch.rand(1, 3, 1, 8))
