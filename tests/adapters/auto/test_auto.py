"""``auto`` / ``auto+``: spandrel's families from their released layouts, equal to spandrel, the contract, files."""
from __future__ import annotations

import pickle
import warnings

import pytest
import torch

import adapters
from adapters.auto import FAMILIES, UNSUPPORTED, families_markdown
from adapters.auto.tiny import FULL_SIZE, LAYOUTS, TINY, input_size, save_layout, tiny_network, write_tiny_file
from adapters.testing import CHECKS, check_adapter
from iqprior.checkpoint import CheckpointError, CheckpointRefused

spandrel = pytest.importorskip("spandrel")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Every tiny family, written once in its release layout."""
    d = tmp_path_factory.mktemp("auto")
    return {f: write_tiny_file(f, d / f"{f}.{'safetensors' if f == 'SPAN' else 'pth'}") for f in TINY}


def _spandrel(family: str):
    """spandrel's own descriptor of the same weights (loaded from the state dict, as a reference)."""
    return spandrel.ModelLoader().load_from_state_dict(tiny_network(family).state_dict())


@pytest.mark.parametrize("family", TINY)
def test_auto_equals_spandrel_and_auto_plus_equals_auto(family, files, one_thread):
    base = adapters.create("auto", checkpoint=files[family])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plus = adapters.create("auto+", checkpoint=files[family])
    ref = _spandrel(family)
    s = input_size(family)
    x = torch.rand(2, 3, s - 3, s + 5, generator=torch.Generator().manual_seed(0))  # sizes spandrel pads
    with torch.no_grad():
        y = base(x)
        assert y.shape == (2, 3, (s - 3) * ref.scale, (s + 5) * ref.scale)
        for i in range(2):  # spandrel's call takes one image; a batch of two may differ in the last bits
            one = base(x[i:i + 1])
            assert (one.clamp(0, 1) - ref(x[i:i + 1].clone())).abs().max() <= 1e-5
            assert (one - y[i:i + 1]).abs().max() <= 1e-4
        for level in (0, 5, 9):
            assert torch.equal(plus(x, score=level), y)
    assert base.architecture == family and plus.injections[0].at == plus.options["condition_at"]
    assert base.scale == ref.scale and base.task == ("face" if ref.purpose == "FaceSR" else "image")


CONTRACT = [f if f not in ("ESRGAN", "SCUNet") else pytest.param(f, marks=pytest.mark.slow) for f in TINY]


@pytest.mark.parametrize("family", CONTRACT)
def test_contract(family, files, one_thread):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = check_adapter("auto+", options={"checkpoint": str(files[family])}, size=input_size(family))
    assert set(report.results) == set(CHECKS) and "equals auto" in report.results["identity"]


def test_contract_of_the_base(files):
    report = check_adapter("auto", options={"checkpoint": str(files["NAFNet"])}, checks=("identity", "roundtrip"))
    assert report.results["roundtrip"] == "ok"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_release_layout_loads_the_same_network(layout, tmp_path):
    state = tiny_network("SwinIR").state_dict()
    path = save_layout(state, tmp_path / ("m.safetensors" if layout == "safetensors" else "m.pth"), layout)
    model = adapters.create("auto", checkpoint=path)
    for k, v in state.items():  # params_ema, not the (different) params next to it
        assert torch.equal(model.net.state_dict()[k], v), k


def test_lightning_ckpt_with_model_prefix(tmp_path):
    state = tiny_network("Compact").state_dict()
    torch.save({"state_dict": {f"model.{k}": v for k, v in state.items()}, "epoch": 1}, tmp_path / "last.ckpt")
    assert adapters.create("auto", checkpoint=tmp_path / "last.ckpt").architecture == "Compact"


def test_saved_directory_round_trips_strictly(files, tmp_path):
    model = adapters.create("auto+", checkpoint=files["SwinIR"])
    with torch.no_grad():
        model.score_embedding.weight.normal_()
    model.save_pretrained(tmp_path / "saved")
    again = adapters.create("auto+", checkpoint=tmp_path / "saved")
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        assert torch.equal(again(x, score=3), model(x, score=3))
        assert not torch.equal(again(x, score=3), again(x, score=8))  # trained levels differ
    assert again.options["architecture"] == "SwinIR" and again.options["hyperparameters"]["embed_dim"] == 12

    import json
    cfg = json.loads((tmp_path / "saved" / "config.json").read_text())
    cfg["options"]["hyperparameters"]["embed_dim"] = 24
    (tmp_path / "saved" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="hyperparameters"):
        adapters.create("auto+", checkpoint=tmp_path / "saved")


def test_needs_a_file_and_refuses_unknown_and_hostile_files(tmp_path, capsys):
    with pytest.raises(ValueError, match="checkpoint=FILE"):
        adapters.create("auto+")
    torch.save({"params": {"encoder.weird.weight": torch.zeros(3, 3)}}, tmp_path / "unknown.pth")
    with pytest.raises(CheckpointError, match=r"no architecture spandrel knows.*encoder\.weird\.weight \(3, 3\)") as e:
        adapters.create("auto", checkpoint=tmp_path / "unknown.pth")
    assert "\n" not in str(e.value)

    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))
    torch.save({"params": Boom()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointRefused, match="builtins.print"):
        adapters.create("auto", checkpoint=tmp_path / "evil.pth")
    (tmp_path / "legacy.pth").write_bytes(pickle.dumps({"params": Boom()}))  # a legacy (non-zip) pickle
    with pytest.raises(CheckpointError):
        adapters.create("auto", checkpoint=tmp_path / "legacy.pth")
    assert "pwned" not in capsys.readouterr().out


def test_unsupported_family_gives_the_reason(files, monkeypatch):
    monkeypatch.setitem(UNSUPPORTED, "Compact", "not an image model (test)")
    with pytest.raises(ValueError, match="Compact model, which auto cannot run: not an image model"):
        adapters.create("auto", checkpoint=files["Compact"])


def test_family_without_entry_warns_and_condition_at_overrides(files):
    assert "RCAN" not in FAMILIES
    with pytest.warns(UserWarning, match="RCAN has no injection point .* goes to '([^']+)'"):
        model = adapters.create("auto+", checkpoint=files["RCAN"])
    assert model.injections[0].at == model.options["condition_at"]
    chosen = adapters.create("auto+", checkpoint=files["RCAN"], condition_at="head")
    assert chosen.injections[0].at == "head" and chosen.score_embedding.shape == (8, 1, 1)
    with pytest.raises(ValueError, match="did you mean"):
        adapters.create("auto+", checkpoint=files["RCAN"], condition_at="haed")
    assert not adapters.create("auto", checkpoint=files["RCAN"], condition_at="head").is_conditioned


def test_adain_mode(files):
    report = check_adapter("auto+", options={"checkpoint": str(files["NAFNet"]), "mode": "adain"},
                           checks=("identity", "roundtrip", "mixed"))
    assert report.results["roundtrip"] == "ok"


def test_sr_finetune_losses_resize_the_lq_by_the_scale(files):
    model = adapters.create("auto+", checkpoint=files["SPAN"])
    params = model.prepare_finetune()
    gt = torch.rand(2, 3, 32, 32)
    losses = model.finetune_losses(gt.flip(-1), gt, torch.tensor([2, 7]))
    losses["l1"].backward()
    assert model.scale == 2 and params == model.embedding_parameters()
    assert all(p.grad is None for n, p in model.named_parameters() if "score_embedding" not in n)


def test_docs_table_lists_every_family():
    table = families_markdown()
    for support in spandrel.MAIN_REGISTRY.architectures():
        assert f"| {support.architecture.id} |" in table
    assert "| LaMa | unsupported: inpainting" in table and "| SwinIR | supported | `patch_unembed`" in table


@pytest.mark.slow
@pytest.mark.parametrize("family", FULL_SIZE)
def test_full_size_face_model(family, tmp_path, one_thread):
    """GFPGAN at its released size: [-1, 1] like upstream, equal to spandrel's network; contract with fixed noise."""
    path = write_tiny_file(family, tmp_path / "GFPGANv1.4.pth")
    model = adapters.create("auto+", checkpoint=path)
    assert model.task == "face" and model.native_size == 512 and model.score_embedding.shape == (256, 4, 4)
    net = _spandrel(family).model
    x = torch.rand(1, 3, 512, 512)
    with torch.no_grad():
        torch.manual_seed(0)
        y = model(x, score=9)
        torch.manual_seed(0)
        want = (net(x * 2 - 1)[0] + 1) / 2
    assert (y - want).abs().max() <= 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("family", FULL_SIZE)
def test_full_size_contract(family, tmp_path, one_thread):
    """The contract at 512² (several minutes on a CPU); fixed StyleGAN noise makes calls deterministic."""
    path = write_tiny_file(family, tmp_path / "GFPGANv1.4.pth")
    check_adapter("auto+", options={"checkpoint": str(path)}, call_kwargs={"randomize_noise": False},
                  checks=("identity", "keys", "finetune", "roundtrip", "mixed"))


def test_cli_restore_keeps_the_scale_and_finetune_trains_only_the_embedding(files, tmp_path):
    import torchvision

    from iqprior.cli import main
    from iqprior.io import read_image

    gt = tmp_path / "gt"
    gt.mkdir()
    for i in range(2):
        torchvision.utils.save_image(torch.rand(3, 40, 36), gt / f"{i}.png")
    assert main(["restore", str(gt), "--model", "auto+", "--checkpoint", str(files["SPAN"]), "--out",
                 str(tmp_path / "out"), "--no-progress"]) == 0
    assert read_image(tmp_path / "out" / "0.png").shape == (3, 80, 72)   # x2 kept
    assert main(["finetune", "--model", "auto+", "--checkpoint", str(files["SPAN"]), "--data", str(gt),
                 "--default-level", "7", "--steps", "2", "--batch-size", "2", "--size", "32", "--num-workers", "0",
                 "--out", str(tmp_path / "ft"), "--no-progress"]) == 0
    tuned = adapters.create("auto+", checkpoint=tmp_path / "ft" / "final")
    base = adapters.create("auto", checkpoint=files["SPAN"])
    assert tuned.scale == 2 and all(torch.equal(v, tuned.net.state_dict()[k]) for k, v in base.net.state_dict().items())
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert not torch.equal(tuned(x, score=7), tuned(x, score=0))
    assert main(["restore", str(gt), "--model", "auto", "--checkpoint", str(gt / "0.png"), "--out",
                 str(tmp_path / "bad")]) != 0 and not (tmp_path / "bad").exists()


def test_grayscale_model_sees_the_luma_and_gives_three_channels(tmp_path):
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(0)
    net = Compact(num_in_ch=1, num_out_ch=1, num_feat=8, num_conv=2, upscale=2)
    path = save_layout(net.state_dict(), tmp_path / "gray.pth", "params")
    model = adapters.create("auto", checkpoint=path)
    ref = spandrel.ModelLoader().load_from_state_dict(net.state_dict())
    x = torch.rand(1, 3, 12, 10)
    luma = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    with torch.no_grad():
        y = model(x)
    assert model.in_channels == 1 and y.shape == (1, 3, 24, 20)
    assert torch.equal(y[:, 0], y[:, 2]) and (y[:, :1].clamp(0, 1) - ref(luma)).abs().max() <= 1e-5


def test_check_adapter_on_an_auto_plus_instance_compares_it_with_its_own_bare_network():
    """An ``auto+`` built from a model file cannot be rebuilt by name: the identity and keys checks of an
    instance compare it with a copy of itself without its embeddings (issue 34)."""
    pytest.importorskip("spandrel")
    from adapters.testing import check_adapter

    model = adapters.create("auto+", tiny=True)
    report = check_adapter(model, checks=("identity", "keys"))
    assert report.results["identity"] == "ok (equals auto+ without its embeddings)"
    assert report.results["keys"] == "ok"
    with torch.no_grad():       # a non-zero embedding makes it differ from its bare network: the check can fail
        model.embeddings()[0].weight.add_(0.5)
    bad = check_adapter(model, checks=("identity",), raise_on_failure=False)
    assert bad.failures
