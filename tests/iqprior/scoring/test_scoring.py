"""The ensemble on real pyiqa networks: random weights for learned members; niqe/brisque offline."""
import re

import pytest
import torch

from iqprior.io import read_image
from iqprior.scoring import SPECS, Calibration, MemberWeightsMissing, create_scorer, member_available
from iqprior.scoring.ensemble import preset_members


@pytest.fixture(scope="module")
def faces():
    from pathlib import Path
    root = Path(__file__).resolve().parents[3] / "examples" / "data" / "faces"
    x = torch.stack([read_image(p) for p in sorted(root.glob("*.png"))[:2]])
    return torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", antialias=True)


@pytest.fixture(scope="module")
def learned(small_topiq_spec):
    torch.manual_seed(0)
    return create_scorer([small_topiq_spec, "musiq"], pretrained=False, device="cpu", batch_size=2)


def test_spec_table_is_consistent():
    for name, spec in SPECS.items():
        assert spec.name == name
        lo, hi = spec.score_range
        assert hi > lo
        assert spec.backend == "pyiqa" or ":" in spec.backend
    assert SPECS["piqe"].lower_better and not SPECS["musiq"].lower_better
    assert not SPECS["qalign"].differentiable


def test_offline_preset_scores(faces):
    scorer = create_scorer("offline", device="cpu")
    raw = scorer.raw(faces)
    assert set(raw) == {"niqe", "brisque"} and all(v.shape == (2,) for v in raw.values())
    s = scorer(faces)
    expected = ((1 - raw["niqe"] / 15).clamp(0, 1) + (1 - raw["brisque"] / 100).clamp(0, 1)) / 2  # documented ranges
    assert torch.allclose(s, expected, atol=1e-6)


def test_weightless_members_score(faces):
    scorer = create_scorer(["piqe", "entropy"], device="cpu")
    raw = scorer.raw(faces)
    expected = ((1 - raw["piqe"] / 100).clamp(0, 1) + (raw["entropy"] / 8).clamp(0, 1)) / 2  # documented ranges
    assert torch.allclose(scorer(faces), expected, atol=1e-6)


def test_calibrated_ensemble_is_mean_of_members(faces):
    scorer = create_scorer(["piqe", "entropy"], device="cpu")
    raw = scorer.raw(faces)
    cal = Calibration.fit({"piqe": [0.0, 100.0], "entropy": [raw["entropy"].min().item() - 1, 8.0]})
    scorer.calibration = cal
    expected = torch.stack([cal.normalise(n, raw[n]).clamp(0, 1) for n in ("piqe", "entropy")]).mean(0)
    assert torch.allclose(scorer(faces), expected.float(), atol=1e-6)


def test_learned_members_random_weights_batch_and_grad(learned, faces):
    raw = learned.raw(faces)
    assert set(raw) == {"topiq_nr-face-v1", "musiq"} and raw["musiq"].shape == (2,)
    # batching gives the same per-image scores as one-by-one
    single = torch.cat([learned.raw(faces[i:i + 1])["topiq_nr-face-v1"] for i in range(2)])
    assert torch.allclose(single, raw["topiq_nr-face-v1"], atol=1e-5)
    x = faces[:1].clone().requires_grad_(True)
    learned(x, grad=True, clip=False).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in learned.parameters())


def test_precision_autocasts_learned_members_only(learned, faces):
    """``precision="bf16"`` runs the learned networks under autocast (their scores move, a little); the
    hand-crafted and published models of our own (offline: NIQE, BRISQUE) keep their reference arithmetic
    (bit-identical); scores come back float32; fp32 is restored exactly."""
    ref = learned.raw(faces)
    offline = create_scorer("offline", device="cpu", precision="bf16")
    assert offline.precision == "bf16" and all(m.precision == "bf16" for m in offline.members)
    off32 = create_scorer("offline", device="cpu")
    for k, v in offline.raw(faces).items():
        assert torch.equal(v, off32.raw(faces)[k]), k
    try:
        learned.precision = "bf16"
        low = learned.raw(faces)
    finally:
        learned.precision = "fp32"
    for k in ref:
        assert low[k].dtype == torch.float32
        assert not torch.equal(low[k], ref[k]), k                    # autocast really ran
        lo, hi = SPECS[k].score_range
        assert torch.allclose(low[k], ref[k], atol=0.05 * (hi - lo)), k
    assert torch.equal(learned.raw(faces)["musiq"], ref["musiq"])
    with pytest.raises(ValueError, match="precision"):
        learned.precision = "int8"


def test_members_stay_in_eval_mode(learned, faces):
    torch.nn.Sequential(learned).train()
    assert not any(m.training for member in learned.members for m in member.net.modules())
    a = learned.raw(faces[:1])["topiq_nr-face-v1"]
    assert torch.equal(a, learned.raw(faces[:1])["topiq_nr-face-v1"])  # no dropout active
    learned.eval()


def test_missing_weights_error_names_files_and_dir():
    with pytest.raises(MemberWeightsMissing) as err:
        create_scorer(["musiq"], device="cpu")
    msg = str(err.value)
    assert "musiq_koniq_ckpt-e95806b9.pth" in msg and "pyiqa" in msg
    ok, why = member_available("topiq_nr-face-v1")
    assert not ok and "topiq_nr_gfiqa_res50" in why


def test_local_weight_file_is_loaded_strictly(tmp_path, monkeypatch, faces):
    """A weight file in pyiqa's cache is loaded with weights_only=True; a foreign one is rejected clearly."""
    from iqprior.checkpoint import CheckpointError
    from iqprior.scoring import members

    src = create_scorer(["musiq"], pretrained=False, device="cpu")
    monkeypatch.setattr(members, "weight_dir", lambda w: tmp_path)
    torch.save({"params": src.members[0].net.state_dict()}, tmp_path / "musiq_koniq_ckpt-e95806b9.pth")
    with pytest.raises(CheckpointError, match="does not start with 'e95806b9'"):  # a stand-in, not pyiqa's file
        create_scorer(["musiq"], device="cpu")
    # the file is a stand-in under the real (hash-prefixed) name: skip only the name-hash check from here on
    monkeypatch.setattr("iqprior.file_hash.HUB_HASH", re.compile(r"(?!)"))
    loaded = create_scorer(["musiq"], device="cpu")
    assert torch.equal(loaded.raw(faces)["musiq"], src.raw(faces)["musiq"])
    torch.save({"params": {"foo": torch.zeros(1)}}, tmp_path / "musiq_koniq_ckpt-e95806b9.pth")
    with pytest.raises(CheckpointError, match="missing"):
        create_scorer(["musiq"], device="cpu")


def test_unknown_member_and_presets():
    with pytest.raises(ValueError, match="did you mean 'musiq'"):
        preset_members(["musiqq"])
    with pytest.raises(ValueError, match="twice"):
        preset_members(["piqe", "piqe"])
    assert [s.name for s in preset_members("piqe, entropy")] == ["piqe", "entropy"]
    # Q-Align is optional in the paper preset: absent weights -> left out
    assert [s.name for s in preset_members("paper")] == ["topiq_nr-face-v1", "topiq_nr-face"]
    with pytest.raises(ValueError, match="random weights"):  # its backend loads q-future/one-align itself
        create_scorer(["qalign"], pretrained=False)


def test_input_validation(learned):
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        learned.raw(torch.rand(3, 32, 32))
    with pytest.raises(TypeError, match="float"):
        learned.raw(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="not differentiable"):
        create_scorer("offline", device="cpu").raw(torch.rand(1, 3, 32, 32), grad=True)
