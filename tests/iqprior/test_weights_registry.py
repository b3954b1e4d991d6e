"""One registry for every file: `iqprior weights add` checks, --checkpoint NAME, missing files named."""
import pytest
import torch

import adapters
from adapters.nu2net import build_nu2net
from iqprior import weights
from iqprior.cli import main


def test_registry_knows_every_file_the_project_reads():
    from iqprior.scoring.specs import HF, SPECS
    needed = set(adapters.files_used_by())
    needed |= {w.file for s in SPECS.values() for w in s.weights if w.where != HF}
    needed |= {"detection_Resnet50_Final.pth", "parsing_parsenet.pth", "alexnet-owt-7be5be79.pth",
               "LPIPS_v0.1_alex-df73285e.pth", "vgg19-dcbb9e9d.pth", "RN50.pt"}
    assert needed <= set(weights.REGISTRY), needed - set(weights.REGISTRY)


def test_add_refuses_random_bytes_and_accepts_official_layout(tmp_path, capsys, layouts):
    junk = tmp_path / "NU2Net_ckpt.pth"
    junk.write_bytes(torch.randint(0, 256, (2048,), dtype=torch.uint8).numpy().tobytes())
    assert main(["weights", "add", str(junk)]) == 1
    assert "refused" in capsys.readouterr().out and not (weights.cache_dir() / junk.name).exists()
    wrong = tmp_path / "wrong" / "NU2Net_ckpt.pth"
    wrong.parent.mkdir()
    torch.save({"net": {"conv.weight": torch.zeros(3)}}, wrong)
    assert main(["weights", "add", str(wrong)]) == 1
    assert "missing" in capsys.readouterr().out
    (tmp_path / "good").mkdir()
    good = layouts.write_runner_save(tmp_path / "good" / "NU2Net_ckpt.pth", build_nu2net().net.state_dict(), 1)
    assert main(["weights", "add", str(good)]) == 0
    assert "adapter nu2net" in capsys.readouterr().out and (weights.cache_dir() / good.name).is_file()
    assert main(["weights", "path", "NU2Net_ckpt.pth"]) == 0


def test_checkpoint_by_registered_name(tmp_path, monkeypatch):
    src = build_nu2net()
    (tmp_path / "w").mkdir()
    torch.save({"net": src.net.state_dict()}, tmp_path / "w" / "NU2Net_ckpt.pth")
    monkeypatch.setenv("IQPRIOR_WEIGHTS", str(tmp_path / "w"))
    monkeypatch.chdir(tmp_path)  # no file of that name in the working directory
    model = adapters.create("nu2net", checkpoint="NU2Net_ckpt.pth")
    assert all(torch.equal(a, b) for a, b in zip(model.net.state_dict().values(), src.net.state_dict().values()))
    monkeypatch.delenv("IQPRIOR_WEIGHTS")
    with pytest.raises(weights.WeightsUnavailableError, match="NU2Net_ckpt.pth"):
        adapters.create("nu2net", checkpoint="NU2Net_ckpt.pth")


def test_missing_files_are_all_named():
    with pytest.raises(weights.WeightsUnavailableError) as err:
        adapters.create("difface", checkpoint="official")
    assert "iddpm_ffhq512_ema500000.pth" in str(err.value) and "swinir_restoration512_L1.pth" in str(err.value)
    from iqprior.scoring import create_scorer
    with pytest.raises(weights.WeightsUnavailableError) as err:
        create_scorer(["topiq_nr-face-v1", "arniqa", "clipiqa"])
    for f in ("topiq_nr_gfiqa_res50-d76bf1ae.pth", "ARNIQA.pth", "regressor_koniq10k.pth", "RN50.pt"):
        assert f in str(err.value)


def test_verify_checks_hash_prefix_in_name(tmp_path, monkeypatch):
    (tmp_path / "w").mkdir()
    torch.save({"x": torch.zeros(1)}, tmp_path / "w" / "alexnet-owt-7be5be79.pth")
    monkeypatch.setenv("IQPRIOR_WEIGHTS", str(tmp_path / "w"))
    assert weights.verify("alexnet-owt-7be5be79.pth")[2] is False
