"""The safe reader on the released files' real layouts (Lightning, numpy-1/2 scalars, DDP prefixes)."""
import hashlib
import zipfile

import pytest
import torch

import adapters
from adapters.daefr import build_daefr
from adapters.nu2net import build_nu2net
from iqprior.checkpoint import CheckpointError, CheckpointRefused, read_official_checkpoint, safe_load
from iqprior.torchscript import read_scripted_tensors


def _noisy(module: torch.nn.Module) -> dict:
    g = torch.Generator().manual_seed(1)
    return {k: v + 0.05 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v
            for k, v in module.state_dict().items()}


def test_lightning_1_0_8_checkpoint_fixture_names_the_real_class(tmp_path, layouts):
    path = layouts.write_lightning(tmp_path / "DAEFR_model.ckpt", {"w": torch.ones(2)})
    assert "pytorch_lightning" not in __import__("sys").modules
    assert layouts.pickled_globals(path) == [f"{layouts.LIGHTNING_MODULE}.ModelCheckpoint"]
    obj = safe_load(path)
    assert obj["pytorch-lightning_version"] == "1.0.8" and len(obj["optimizer_states"]) == 2
    assert torch.equal(read_official_checkpoint(path)["w"], torch.ones(2))


def test_daefr_lightning_ckpt_loads_like_plain_tensors(tmp_path, layouts):
    src = build_daefr(tiny=True, exact=True)
    state = _noisy(src.net)
    src.net.load_state_dict(state)
    ckpt = layouts.write_lightning(tmp_path / "DAEFR_model.ckpt", state)
    torch.save(state, tmp_path / "plain.pth")
    x = torch.rand(1, 3, 16, 16)
    a = adapters.create("daefr", checkpoint=ckpt, exact=True, tiny=True)  # bit-equal to the builder's net
    b = adapters.create("daefr", checkpoint=tmp_path / "plain.pth", exact=True, tiny=True)
    with torch.no_grad():
        assert torch.equal(a(x), b(x)) and torch.equal(a(x), src(x))


@pytest.mark.parametrize("numpy_major", [1, 2])
def test_nu2net_runner_save_with_numpy_scalars(tmp_path, layouts, numpy_major):
    src = build_nu2net().eval()
    state = _noisy(src.net)
    path = layouts.write_runner_save(tmp_path / "NU2Net_ckpt.pth", state, numpy_major)
    core = "numpy.core" if numpy_major == 1 else "numpy._core"
    assert f"{core}.multiarray.scalar" in layouts.pickled_globals(path)  # what the released file names
    assert "numpy.dtype" in layouts.pickled_globals(path)
    obj = safe_load(path)
    assert abs(float(obj["max_psnr"]) - 23.4567) < 1e-9 and obj["epoch"] == 300 and "state" in obj["optimizer"]
    torch.save({"net": state}, tmp_path / "plain.pth")
    x = torch.rand(1, 3, 32, 32)
    a = adapters.create("nu2net", checkpoint=path)
    b = adapters.create("nu2net", checkpoint=tmp_path / "plain.pth")
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def test_difface_estimator_ddp_prefix_still_loads(tmp_path):
    from adapters.difface import SwinIR
    net = SwinIR(**adapters.spec("difface").tiny["estimator_config"])
    state = {f"module.{k}": v for k, v in _noisy(net).items()}
    torch.save({"iters_start": 10, "log_step": {"train": 1}, "log_step_img": {"train": 1}, "state_dict": state},
               tmp_path / "swinir_restoration512_L1.pth")
    got = read_official_checkpoint(tmp_path / "swinir_restoration512_L1.pth", ("state_dict",))
    assert set(got) == set(state)


def test_refusal_names_file_and_globals_once(tmp_path, layouts, monkeypatch):
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "PWNED"
    path = layouts.write_hostile(tmp_path / "evil.pth", marker)
    with pytest.raises(CheckpointRefused) as err:
        safe_load(path)
    msg = str(err.value)
    assert str(path) in msg and "io.open" in msg and "\n" not in msg
    assert "weights_only=False" not in msg and "trust" not in msg.lower()  # torch's advice is not repeated
    assert not marker.exists()
    layouts.unpickled_unsafely(path)  # the fixture is really hostile
    assert marker.exists()


def test_corrupt_truncated_and_random_files(tmp_path):
    torch.save({"w": torch.zeros(100)}, tmp_path / "ok.pth")
    data = (tmp_path / "ok.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    (tmp_path / "rand.pth").write_bytes(torch.randint(0, 256, (2048,), dtype=torch.uint8).numpy().tobytes())
    for name in ("cut.pth", "rand.pth"):
        with pytest.raises(CheckpointError, match="cannot read"):
            safe_load(tmp_path / name)


def test_hub_hash_prefix_is_checked(tmp_path):
    torch.save({"w": torch.zeros(3)}, tmp_path / "x.pth")
    digest = hashlib.sha256((tmp_path / "x.pth").read_bytes()).hexdigest()
    good = tmp_path / f"trunk-{digest[:8]}.pth"
    (tmp_path / "x.pth").rename(good)
    assert torch.equal(safe_load(good)["w"], torch.zeros(3))
    bad = tmp_path / "trunk-00000000.pth"
    bad.write_bytes(good.read_bytes())
    with pytest.raises(CheckpointError, match="does not start with '00000000'"):
        safe_load(bad)


def test_torchscript_archive_is_read_as_tensors_never_run(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3),
                                                                          torch.nn.BatchNorm2d(4)))
    with pytest.warns(FutureWarning):
        torch.jit.save(torch.jit.script(net), tmp_path / "ts.pt")
    got = read_scripted_tensors(tmp_path / "ts.pt")
    own = net.state_dict()
    assert set(got) == set(own) and all(torch.equal(got[k], own[k]) for k in own)
    assert set(safe_load(tmp_path / "ts.pt")) == set(own)
    # an archive whose pickle names another global is refused
    with zipfile.ZipFile(tmp_path / "ts.pt") as z, zipfile.ZipFile(tmp_path / "evil.pt", "w") as out:
        for item in z.infolist():
            data = z.read(item)
            if item.filename.endswith("data.pkl"):
                data = data.replace(b"collections\nOrderedDict", b"os\nsystem\n\n\n\n\n\n\n\n\n\n\n\n\n")[:len(data)]
            out.writestr(item, data)
    with pytest.raises(CheckpointError):
        read_scripted_tensors(tmp_path / "evil.pt")
