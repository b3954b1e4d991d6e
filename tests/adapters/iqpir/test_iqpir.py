"""The ``iqpir`` adapter: options, key map, file layouts, save/load, restore and ONNX (tiny, random weights)."""
from __future__ import annotations

import pytest
import torch

import adapters
from adapters.iqpir import official_key, our_key
from iqprior.checkpoint import CheckpointError
from iqprior.cli import main
from iqprior.io import read_image


def _tiny(**options) -> adapters.Adapter:
    torch.manual_seed(0)
    model = adapters.create("iqpir", tiny=True, exact=True, **options)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-trivial weights everywhere (the level table and fusion blocks start otherwise)
        for n, p in model.named_parameters():
            p.add_(torch.randn(p.shape, generator=g) * (0.5 if "score_embedding" in n else 0.05))
    return model.eval()


def _official_state(model) -> dict[str, torch.Tensor]:
    return {official_key(k): v.clone() for k, v in model.net.state_dict().items()}


def test_key_map_is_a_bijection_on_the_released_keys():
    keys = list(adapters.create("iqpir", tiny=True).net.state_dict())
    official = [official_key(k) for k in keys]
    assert [our_key(k) for k in official] == keys
    assert "quantize_aesthetic.embedding.weight" in official and "score_embed.weight" in official
    assert "idx_pred_layer.1.weight" in official and not any("idx_pred_layer_hq" in k for k in official)
    assert any(k.startswith("fuse_convs_dict.") for k in official)


@pytest.mark.parametrize("layout", ["params_ema", "params", "module", "raw"])
def test_released_layouts_load_strictly(tmp_path, layout):
    src = _tiny()
    state = _official_state(src)
    if layout == "module":
        blob = {"params_ema": {"module." + k: v for k, v in state.items()}}
    elif layout == "raw":
        blob = state
    else:
        blob = {layout: state}
    path = tmp_path / "iqpir.pth"
    torch.save(blob, path)
    dst = adapters.create("iqpir", tiny=True, checkpoint=path, exact=True).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(dst(x, score=7), src(x, score=7))


def test_a_file_missing_a_key_is_refused(tmp_path):
    state = _official_state(_tiny())
    del state["score_embed.weight"]
    torch.save({"params_ema": state}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="score_embed"):
        adapters.create("iqpir", tiny=True, checkpoint=tmp_path / "bad.pth")


def test_score_fidelity_and_alpha():
    model = _tiny()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        out = model.net(x * 2 - 1, score=torch.tensor(0.9))
        assert out.levels.tolist() == [9]                       # float32 0.9 is level 9, as their code
        assert torch.equal(model(x), model(x, score=9))         # default: level 9 (their README's 0.9)
        assert torch.equal(model(x, score=torch.tensor(0.95)), model(x, score=9))
        assert not torch.equal(model(x, score=2), model(x, score=9))
        assert torch.equal(model(x), model(x, fidelity=0.0))    # default w = 0 (their README command)
        assert not torch.equal(model(x, fidelity=0.5), model(x))
        assert torch.equal(model(x, fidelity=0.5), _tiny(fidelity=0.5)(x))
        assert not torch.equal(_tiny(alpha=1.0)(x), model(x))
    with pytest.raises(ValueError, match="fidelity"):
        model(x, fidelity=1.5)
    with pytest.raises(ValueError, match="aligned 64x64"):
        model(torch.rand(1, 3, 32, 32))


def test_save_pretrained_round_trip(tmp_path):
    model = _tiny(alpha=0.7, fidelity=0.3)
    model.save_pretrained(tmp_path / "d")
    back = adapters.create("iqpir", checkpoint=tmp_path / "d", exact=True).eval()
    assert back.options == {"alpha": 0.7, "fidelity": 0.3, "preset": "tiny"}
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(back(x, score=4), model(x, score=4))


def test_restore_cli_aligned(face_paths, tmp_path, capsys):
    ckpt = _tiny().save_pretrained(tmp_path / "ckpt")
    out = tmp_path / "out"
    assert main(["restore", str(face_paths[0]), "--aligned", "--model", "iqpir", "--checkpoint", str(ckpt),
                 "--score", "9", "--out", str(out), "--no-progress"]) == 0
    assert read_image(out / (face_paths[0].stem + ".png")).shape == (3, 64, 64)


def test_restore_cli_whole_photo(whole_paths, tmp_path, released_weights):
    """Whole photos: detect (the default detector: MTCNN offline), align, restore with iqpir, paste back."""
    from iqprior.mtcnn_release import MTCNN_FILE

    released_weights(MTCNN_FILE)
    ckpt = _tiny().save_pretrained(tmp_path / "ckpt")
    out = tmp_path / "out"
    assert main(["restore", str(whole_paths[0]), "--model", "iqpir", "--checkpoint", str(ckpt), "--score", "9",
                 "--out", str(out), "--no-progress"]) == 0
    restored, original = read_image(next(out.iterdir())), read_image(whole_paths[0])
    assert restored.shape == original.shape and (restored - original).abs().max() > 0.05


def test_onnx_fidelity_input(tmp_path):
    pytest.importorskip("onnxruntime")
    from iqprior.export import OnnxModel, export_onnx

    model = _tiny()
    export_onnx(model, tmp_path / "iqpir.onnx", verify=False)
    runner = OnnxModel(tmp_path / "iqpir.onnx", threads=1)
    assert runner.controls == {"fidelity": 0.0} and runner.is_conditioned
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    for lv, w in ((9, 0.0), (3, 0.5), (9, 1.0)):
        with torch.no_grad():
            ref = model(x, score=lv, fidelity=w)
        assert (runner(x, score=lv, fidelity=w) - ref).abs().max() < 1e-4 * max(1.0, ref.abs().max().item())


def test_registry_entries_and_demo_listing(tmp_path, monkeypatch):
    from iqprior import weights
    from iqprior.demo.service import model_choices

    spec = adapters.spec("iqpir")
    assert spec.official_files == ("IQPIR_stage3.pth",) and spec.task == "face" and spec.native_size == 512
    assert spec.condition == adapters.specs.BUILT_IN and spec.takes_level  # takes a level by construction
    assert weights.get("IQPIR_stage3.pth").licence.startswith("S-Lab")
    assert "iqpir" not in [c.name for c in model_choices(model="minires")]
    (tmp_path / "IQPIR_stage3.pth").write_bytes(b"")  # listed once the file is on disk (not loaded here)
    monkeypatch.setenv("IQPRIOR_WEIGHTS", str(tmp_path))
    assert "iqpir (official weights)" in [c.label for c in model_choices(model="minires")]


def test_weights_add_check_refuses_a_wrong_file(tmp_path):
    from iqprior.cli.weights import check_file

    torch.save({"params_ema": {"x": torch.zeros(1)}}, tmp_path / "IQPIR_stage3.pth")
    with pytest.raises(CheckpointError):
        check_file(tmp_path / "IQPIR_stage3.pth")
