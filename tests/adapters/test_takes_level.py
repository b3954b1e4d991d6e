"""``Adapter.takes_level``: what the sweep note, the benches and the export read to know a level matters."""
import pytest
import torch

import adapters


@pytest.mark.parametrize("name, expected", [("nu2net", False), ("nu2net+", True), ("iqpfr", True), ("iqpir", True)])
def test_takes_level(name, expected):
    model = adapters.create(name, tiny=True)
    assert model.takes_level is expected


def test_a_built_in_level_changes_the_output():
    """iqpir is conditioned by construction (no "+" embeddings), and its level reaches the output."""
    torch.manual_seed(0)
    model = adapters.create("iqpir", tiny=True)
    assert not model.is_conditioned and model.takes_level
    with torch.no_grad():
        for p in model.net.score_embedding.parameters():
            p.normal_()
        x = torch.rand(1, 3, model.native_size, model.native_size)
        assert not torch.equal(model(x, score=0), model(x, score=9))
