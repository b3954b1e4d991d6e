"""``benchmarks/fingerprint.py``: the bit-identity fingerprint a refactor is checked with (tiny, random weights)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("fingerprint", ROOT / "benchmarks" / "fingerprint.py")
fingerprint = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fingerprint)


def test_same_commit_same_fingerprint():
    a = fingerprint.fingerprint(["minires", "minires+"], auto=False)
    b = fingerprint.fingerprint(["minires", "minires+"], auto=False)
    assert a == b and set(a) == {"minires", "minires+"}
    assert fingerprint.compare(a, b) == []


def test_the_level_shows_in_a_plus_fingerprint_only():
    plus = fingerprint.adapter_fingerprint("minires+")
    base = fingerprint.adapter_fingerprint("minires")
    assert len({plus[f"level{lv}"] for lv in fingerprint.LEVELS}) == len(fingerprint.LEVELS)
    assert len({base[f"level{lv}"] for lv in fingerprint.LEVELS}) == 1
    assert plus["takes_level"] and not base["takes_level"]
    assert plus["injections"] == [["encoder", "score_embedding", "add"]]


def test_a_changed_network_is_listed():
    before = {"minires": fingerprint.adapter_fingerprint("minires")}
    after = {"minires": fingerprint.adapter_fingerprint("minires", blocks=2)}   # one more residual block
    diff = fingerprint.compare(before, after)
    assert any(line.startswith("minires: level9:") for line in diff)
    assert any(line.startswith("minires: keys:") for line in diff)


def test_auto_family_and_cli_compare(tmp_path, capsys):
    pytest.importorskip("spandrel")
    one = fingerprint.auto_fingerprint("auto+", "SPAN", "params_ema")
    assert one == fingerprint.auto_fingerprint("auto+", "SPAN", "params_ema") and one["takes_level"]
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"x": one}))
    b.write_text(json.dumps({"x": {**one, "level9": "0" * 16}}))
    assert fingerprint.main(["--compare", str(a), str(a)]) == 0
    assert fingerprint.main(["--compare", str(a), str(b)]) == 1
    assert "x: level9:" in capsys.readouterr().out
