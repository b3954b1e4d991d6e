"""Licences: the project's LICENSE, THIRD_PARTY_NOTICES covering every ported model, non-commercial ones flagged."""
import re
from pathlib import Path

import pytest

import adapters
from iqprior import weights
from iqprior.licences import describe, licence_flag, non_commercial

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text, flag", [
    ("S-Lab License 1.0 (non-commercial)", "NON-COMMERCIAL"),
    ("CC BY-NC 4.0 (RQ-Wu/UnderwaterRanker)", "NON-COMMERCIAL"),
    ("CC BY-NC-SA 4.0 (pyiqa weights)", "NON-COMMERCIAL"),
    ("no licence stated (zhenqifu/PUIE-Net)", "NO LICENCE"),
    ("MIT (facexlib)", ""),
    ("Apache-2.0 (ours; no upstream weights)", ""),
])
def test_licence_flags(text, flag):
    assert licence_flag(text) == flag
    assert non_commercial(text) == (flag == "NON-COMMERCIAL")
    assert describe(text).endswith(f"[{flag}]") == bool(flag)


def test_the_project_licence_is_the_one_setup_cfg_declares():
    assert "Apache License" in (ROOT / "LICENSE").read_text() and "Version 2.0" in (ROOT / "LICENSE").read_text()
    assert re.search(r"^license = Apache-2.0$", (ROOT / "setup.cfg").read_text(), re.M)


def test_third_party_notices_name_every_ported_upstream_and_its_licence():
    notices = (ROOT / "THIRD_PARTY_NOTICES").read_text()
    for name in adapters.list_adapters():
        spec = adapters.spec(name)
        repo = re.match(r"([\w.-]+/[\w.-]+)", spec.source or "")
        if repo and "ours" not in spec.licence:
            assert repo.group(1) in notices, f"THIRD_PARTY_NOTICES lacks {repo.group(1)} ({name})"
            if non_commercial(spec.licence):
                block = notices[notices.index(repo.group(1)) - 400:notices.index(repo.group(1))]
                assert "NON-COMMERCIAL" in block, f"{name}: its section is not flagged NON-COMMERCIAL"
    for asset in ("sample_images", "minires-plus"):
        assert asset in notices


def test_every_s_lab_or_cc_nc_file_is_flagged_and_listed(capsys):
    from iqprior.cli import main

    flagged = {w.name for w in weights.REGISTRY.values() if non_commercial(w.licence)}
    assert {"codeformer.pth", "iddpm_ffhq512_ema500000.pth", "NU2Net_ckpt.pth"} <= flagged
    assert main(["weights", "list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    for name in flagged:
        assert "NON-COMMERCIAL" in lines[name], lines[name]
    assert "NON-COMMERCIAL" not in lines["detection_Resnet50_Final.pth"]
