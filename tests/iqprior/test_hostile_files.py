"""A hostile pickle planted at every place iqprior reads a weight or state file is refused.

The fixture's ``__reduce__`` creates a marker file when unpickled without
``weights_only``; each test plants it under the name a loader reads, runs that
loader (also with ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``) and checks that it
fails with :class:`CheckpointError` and that the marker never appears.
"""
import pytest
import torch

import adapters
from iqprior.checkpoint import CheckpointError


@pytest.fixture(params=["default", "force_no_weights_only"])
def hostile(request, tmp_path, monkeypatch, layouts):
    if request.param == "force_no_weights_only":
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    root = tmp_path / "weights"
    root.mkdir()
    monkeypatch.setenv("IQPRIOR_WEIGHTS", str(root))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    marker = tmp_path / "MARKER"

    def plant(name, state=None):
        return layouts.write_hostile(root / name, marker, state)

    yield plant, marker
    assert not marker.exists(), "a hostile pickle ran"


def _refused(fn, *args, file=None, **kwargs):
    """``fn`` fails on the planted file: refused, or (files with a hash in their name) a hash mismatch."""
    with pytest.raises(CheckpointError) as err:
        fn(*args, **kwargs)
    msg = str(err.value)
    assert "refused" in msg or "sha256" in msg, msg
    if file is not None:
        assert file in msg, msg


def test_adapters_official_files(hostile):
    plant, _ = hostile
    for name, file in [("nu2net", "NU2Net_ckpt.pth"), ("puienet", "puie.pth")]:
        _refused(adapters.create, name, checkpoint=plant(file), file=file)
        _refused(adapters.create, name, checkpoint=file, file=file)  # registered name, through IQPRIOR_WEIGHTS
        _refused(adapters.create, name, checkpoint="official", file=file)


def test_difface_estimator_and_iqpfr_vqgan(hostile):
    plant, _ = hostile
    from adapters.difface import build_difface
    model = build_difface(tiny=True)
    _refused(model.load_estimator, plant("swinir_restoration512_L1.pth"), file="swinir_restoration512_L1.pth")
    _refused(adapters.create, "iqpfr", preset="tiny", vqgan_checkpoint=plant("vqgan_code1024.pth"),
             file="vqgan_code1024.pth")


def test_iqa_member_own_file(hostile):
    plant, _ = hostile
    from iqprior.scoring.members import build_member
    plant("URanker_ckpt-450eb36d.pth")
    _refused(build_member, "uranker", file="URanker_ckpt-450eb36d.pth")


@pytest.mark.parametrize("file", ["ARNIQA.pth", "regressor_koniq10k.pth"])
def test_arniqa_backbone_and_regressor(hostile, file):
    plant, _ = hostile
    from iqprior.scoring.builders import build_arniqa
    from iqprior.scoring.members import build_member
    net = build_arniqa(None)
    good = {"ARNIQA.pth": {f"model.{k}": v for k, v in net.encoder.state_dict().items()},
            "regressor_koniq10k.pth": net.regressor.state_dict()}
    for other, state in good.items():
        if other != file:  # the other file is a valid one, so the planted file is reached
            torch.save(state, plant(other).parent / other)
    plant(file)
    _refused(build_member, "arniqa", file=file)


def test_clip_and_lpips_trunks(hostile):
    plant, _ = hostile
    from iqprior.scoring.fullref import build_fullref_net, check_lpips_layers
    from iqprior.scoring.members import build_member
    plant("RN50.pt")
    _refused(build_member, "clipiqa", file="RN50.pt")
    plant("alexnet-owt-7be5be79.pth")
    # torchvision asks torch hub for the trunk
    _refused(build_fullref_net, "lpips", pretrained=False, file="alexnet-owt-7be5be79.pth")
    _refused(check_lpips_layers, plant("LPIPS_v0.1_alex-df73285e.pth"), file="LPIPS_v0.1_alex-df73285e.pth")


def test_vgg19_of_the_perceptual_loss(hostile):
    plant, _ = hostile
    from iqprior.training.stages import build_perceptual
    plant("vgg19-dcbb9e9d.pth")
    _refused(build_perceptual, "vgg19", file="vgg19-dcbb9e9d.pth")


def test_guarded_hub_refuses_without_hash_help(hostile, monkeypatch):
    """The refusal does not depend on the hash check: a hub file without a hash prefix is refused too."""
    plant, _ = hostile
    from iqprior.checkpoint import CheckpointRefused
    from iqprior.guarded import guarded_loads
    path = plant("trunk.pth")
    with guarded_loads():
        with pytest.raises(CheckpointRefused):
            torch.hub.load_state_dict_from_url("https://example.invalid/trunk.pth")
        with pytest.raises(CheckpointRefused):
            torch.load(path, weights_only=False)  # a dependency asking for an unsafe load
    assert torch.load is not None and torch.hub.load_state_dict_from_url.__module__ == "torch.hub"


def test_face_detector_and_parser(hostile):
    plant, _ = hostile
    from iqprior.faces import FacePipeline
    from iqprior.faces.pipeline import DETECTOR_FILE, PARSER_FILE, build_detector
    det = build_detector()
    torch.save(det.state_dict(), plant(DETECTOR_FILE).parent / DETECTOR_FILE)
    plant(PARSER_FILE)
    _refused(FacePipeline, file=PARSER_FILE)
    plant(DETECTOR_FILE)
    _refused(FacePipeline, use_parse=False, file=DETECTOR_FILE)


def test_resume_skips_hostile_latest_state(hostile, tmp_path, layouts):
    plant, marker = hostile
    from iqprior.training.checkpoint import STATE_FILE, resume, save_checkpoint
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    save_checkpoint(tmp_path / "ck", model, 1, {"opt": opt})
    with torch.no_grad():
        model.weight.add_(1)
    last = save_checkpoint(tmp_path / "ck", model, 2, {"opt": opt})
    layouts.write_hostile(last / STATE_FILE, marker)
    lines = []
    fresh = torch.nn.Linear(3, 2)
    path, state = resume(tmp_path / "ck", fresh, {"opt": torch.optim.Adam(fresh.parameters())}, log=lines.append)
    assert path.name == "step_000001" and state["step"] == 1
    assert len(lines) == 1 and "step_000002" in lines[0] and "\n" not in lines[0]
    assert not torch.equal(fresh.weight, model.weight)  # the step-1 weights, not step 2's
