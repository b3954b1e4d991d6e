"""Networks sized by a file (key indices, shapes, config.json options) are refused before they are allocated
when they exceed what the file holds (issue 33, items 2 and 3)."""
from __future__ import annotations

import json

import pytest
import torch

import adapters
from iqprior.build_bounds import bounded_build
from iqprior.checkpoint import CheckpointError

pytest.importorskip("spandrel")
from safetensors.torch import save_file  # noqa: E402

from adapters.auto.tiny import tiny_network, write_tiny_file  # noqa: E402

REFUSED = "refused before allocating"


def _compact_state() -> dict[str, torch.Tensor]:
    with torch.random.fork_rng():
        return {k: v.clone().contiguous() for k, v in tiny_network("Compact").state_dict().items()}


def test_a_key_index_cannot_ask_for_thousands_of_modules(tmp_path):
    state = _compact_state()
    last = max(int(k.split(".")[1]) for k in state)
    state["body.20000.weight"], state["body.20000.bias"] = state.pop(f"body.{last}.weight"), state.pop(f"body.{last}.bias")
    save_file(state, str(tmp_path / "idx.safetensors"))
    assert (tmp_path / "idx.safetensors").stat().st_size < 20_000
    with pytest.raises(CheckpointError, match=REFUSED):
        adapters.create("auto", checkpoint=tmp_path / "idx.safetensors")


def test_a_shape_cannot_ask_for_a_network_the_file_does_not_hold(tmp_path):
    # body.0 (num_feat, 3, 3, 3) with num_feat = 4000: spandrel would build 4000x4000x3x3 convolutions
    state = _compact_state()
    state["body.0.weight"] = torch.zeros(4000, 3, 3, 3)
    save_file(state, str(tmp_path / "wide.safetensors"))
    with pytest.raises(CheckpointError, match=REFUSED):
        adapters.create("auto", checkpoint=tmp_path / "wide.safetensors")


def _edited_folder(model, path, **options):
    model.save_pretrained(path)
    config = json.loads((path / "config.json").read_text())
    config["options"].update(options)
    (path / "config.json").write_text(json.dumps(config))
    return path


def test_saved_folder_options_cannot_ask_for_a_wider_network(tmp_path):
    folder = _edited_folder(adapters.create("minires+", tiny=True), tmp_path / "m", width=2000)
    with pytest.raises(CheckpointError, match=REFUSED):
        adapters.create("minires+", checkpoint=folder)


def test_saved_auto_folder_condition_shape_is_bounded(tmp_path):
    model = adapters.create("auto+", checkpoint=write_tiny_file("Compact", tmp_path / "c.pth"))
    folder = _edited_folder(model, tmp_path / "a", condition_shape=[100, 512, 512])
    with pytest.raises(CheckpointError, match=REFUSED):
        adapters.create("auto+", checkpoint=folder)


def test_honest_folders_and_files_still_load(tmp_path):
    m = adapters.create("minires+", tiny=True)
    m.save_pretrained(tmp_path / "ok")
    assert isinstance(adapters.create("minires+", checkpoint=tmp_path / "ok"), adapters.Adapter)
    path = write_tiny_file("Compact", tmp_path / "c.pth")
    assert adapters.create("auto", checkpoint=path).architecture == "Compact"


def test_the_budget_counts_before_allocating():
    with pytest.raises(CheckpointError, match=REFUSED), bounded_build(100, 2, "x"):
        torch.empty(10**12)  # 4 TB: sized on the meta device, never allocated
    with bounded_build(100, 2, "x"):
        assert torch.zeros(1000).sum() == 0
