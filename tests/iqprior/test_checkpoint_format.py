"""One list of wrapper keys, one sniffer of formats: every reader of checkpoint files uses them (issue 34, item 3)."""
import ast
import importlib
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from adapters.auto.reading import read_state_dict
from adapters.auto.tiny import LAYOUTS, save_layout
from adapters.base import Adapter
from iqprior.argument_checks import check_checkpoint
from iqprior.checkpoint import prefix_variants, read_official_checkpoint, unwrap_state_dict
from iqprior.checkpoint_format import PREFIXES, WRAPPER_KEYS, prefer, sniff

ROOT = Path(__file__).resolve().parents[2]
#: files that may spell wrapper keys, and why
WRITERS = {"checkpoint_format.py": "the one list", "tiny.py": "writes files in release layouts (layout names)"}
STATE = {"a.weight": torch.arange(6.0).reshape(3, 2), "b.bias": torch.ones(2), "n": torch.tensor(3)}


def _adapter_classes() -> list[type]:
    for name in ("codeformer", "daefr", "difface", "iqpfr", "iqpir", "minires", "nu2net", "puienet", "auto"):
        importlib.import_module(f"adapters.{name}")
    out, todo = [], [Adapter]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return out


def _layouts(tmp_path, layouts) -> dict[str, Path]:
    files = {layout: save_layout(STATE, tmp_path / f"{layout}.{'safetensors' if layout == 'safetensors' else 'pth'}",
                                 layout) for layout in LAYOUTS if layout != "module"}
    for key in WRAPPER_KEYS:
        torch.save({key: STATE, "epoch": 3}, tmp_path / f"w_{key}.pth")
        files[f"w_{key}"] = tmp_path / f"w_{key}.pth"
    files["lightning"] = layouts.write_lightning(tmp_path / "model.ckpt", STATE)
    files["runner_save"] = layouts.write_runner_save(tmp_path / "runner.pth", STATE)
    return files


def test_every_reader_unwraps_every_layout_the_same_way(tmp_path, layouts):
    """The official readers (each adapter's wrapper keys, DifFace's estimator), the default and auto agree."""
    from adapters.difface.adapter import ESTIMATOR_WRAPPER_KEYS

    orders = {cls.__name__: cls.official_wrapper_keys for cls in _adapter_classes()}
    orders["difface estimator"] = ESTIMATOR_WRAPPER_KEYS
    assert all(set(keys) == set(WRAPPER_KEYS) for keys in orders.values()), orders
    for name, path in _layouts(tmp_path, layouts).items():
        if name != "safetensors":  # the official readers read torch files only
            for who, keys in orders.items():
                got = read_official_checkpoint(path, keys)
                assert got.keys() == STATE.keys() and all(torch.equal(got[k], STATE[k]) for k in STATE), (name, who)
        got = read_state_dict(path)
        assert got.keys() == STATE.keys() and all(torch.equal(got[k], STATE[k]) for k in STATE), (name, "auto")


def _string_tuples(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List)) and len(node.elts) >= 2 and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
            yield node.lineno, [e.value for e in node.elts]


def test_the_wrapper_keys_and_prefixes_are_written_once():
    """No module but iqprior.checkpoint_format spells out a list of wrapper keys or the trainers' key prefixes."""
    found = []
    for path in sorted([*ROOT.glob("iqprior/**/*.py"), *ROOT.glob("adapters/**/*.py")]):
        if path.name in WRITERS:
            continue
        for line, values in _string_tuples(ast.parse(path.read_text(encoding="utf-8"))):
            if sum(v in WRAPPER_KEYS for v in values) >= 2 or sum(v in PREFIXES for v in values) >= 3:
                found.append(f"{path.relative_to(ROOT)}:{line}: {values}")
    assert not found, "wrapper keys / prefixes written again:\n" + "\n".join(found)


def test_prefer_puts_a_readers_favourite_first():
    assert prefer("state_dict") == ("state_dict", *(k for k in WRAPPER_KEYS if k != "state_dict"))
    assert prefer() == WRAPPER_KEYS
    with pytest.raises(ValueError, match="unknown wrapper key"):
        prefer("weights")


def test_unwrap_options_nested_and_single_key():
    nested = {"state_dict": {"params_ema": STATE}}
    assert unwrap_state_dict(nested, levels=2).keys() == STATE.keys()
    with pytest.raises(ValueError, match="has no tensors"):
        unwrap_state_dict(nested)  # one level: the inner wrapper holds no tensor
    assert unwrap_state_dict({"g_ema": STATE}, single_key=True).keys() == STATE.keys()
    with pytest.raises(ValueError, match=r"has no tensors \(top-level keys: \['g_ema'\]\)"):
        unwrap_state_dict({"g_ema": STATE})


def test_prefix_variants_strip_where_any_or_every_key_carries_one():
    t = torch.ones(1)
    state = {"module.a": t, "b": t}
    assert [sorted(v) for v in prefix_variants(state, ("module.",))] == [
        ["b", "module.a"], ["a", "b"], ["module.b", "module.module.a"]]
    assert [sorted(v) for v in prefix_variants(state, ("module.",), every_key=True, add=False)] == [["b", "module.a"]]
    assert [sorted(v) for v in prefix_variants({"module.a": t}, every_key=True, add=False)] == [["module.a"], ["a"]]


def test_sniff_names_each_format(tmp_path, layouts):
    torch.save(STATE, tmp_path / "zip.pth")
    torch.save(STATE, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    save_layout(STATE, tmp_path / "st.bin", "safetensors")
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(tmp_path / "scripted.pt"))
    (tmp_path / "text.pth").write_text("not a checkpoint\n")
    (tmp_path / "pickle.pkl").write_bytes(pickle.dumps({"a": 1}, protocol=4))
    (tmp_path / "huge_header.bin").write_bytes((1 << 40).to_bytes(8, "little") + b"{}")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("readme.txt", "hi")
    expect = {"zip.pth": "zip", "legacy.pth": "pickle", "st.bin": "safetensors", "scripted.pt": "torchscript",
              "text.pth": None, "pickle.pkl": "pickle", "huge_header.bin": None, "other.zip": "zip"}
    assert {n: sniff(tmp_path / n) for n in expect} == expect
    for name, kind in expect.items():  # the --checkpoint check is the sniffer's answer
        if kind is None:
            with pytest.raises(ValueError, match="is not a checkpoint"):
                check_checkpoint(str(tmp_path / name))
        else:
            assert check_checkpoint(str(tmp_path / name)) == str(tmp_path / name)
