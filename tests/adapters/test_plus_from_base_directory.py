"""A "+" adapter accepts its base's save_pretrained directory, as it accepts its base's official file."""
import pytest
import torch

import adapters
from iqprior.checkpoint import CheckpointError


def test_plus_loads_its_base_directory_with_zero_embedding(tmp_path):
    base = adapters.create("nu2net")
    base.save_pretrained(tmp_path / "base")
    with pytest.warns(UserWarning, match="embedding.*zero"):
        plus = adapters.create("nu2net+", checkpoint=tmp_path / "base")
    assert plus.is_conditioned
    own = base.net.state_dict()
    assert all(torch.equal(own[k], v) for k, v in plus.net.state_dict().items())
    assert all(int(torch.count_nonzero(w.detach())) == 0 for w in plus.embedding_parameters())
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(plus(x, score=3), base(x))


def test_other_adapters_directories_are_still_refused(tmp_path):
    adapters.create("nu2net").save_pretrained(tmp_path / "base")
    with pytest.raises(CheckpointError, match="holds a saved 'nu2net' adapter"):
        adapters.create("puienet+", checkpoint=tmp_path / "base")
    adapters.create("nu2net+").save_pretrained(tmp_path / "plus")
    with pytest.raises(CheckpointError, match="holds a saved 'nu2net\\+' adapter"):
        adapters.create("nu2net", checkpoint=tmp_path / "plus")
