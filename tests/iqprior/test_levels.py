import pytest
import torch

from iqprior import score_to_level
from iqprior.levels import as_levels


@pytest.mark.parametrize("score,level", [(0.0, 0), (0.1, 1), (0.0999, 0), (0.5, 5), (0.9, 9), (0.9999, 9),
                                         (1.0, 9), (-0.01, 0), (1.2, 9)])
def test_score_to_level_edges(score, level):
    assert int(score_to_level(score)) == level


def test_score_to_level_tensor_and_levels():
    s = torch.tensor([0.0, 0.24, 0.25, 0.99])
    assert score_to_level(s, levels=4).tolist() == [0, 0, 1, 3]
    assert score_to_level(s).dtype == torch.long


def test_score_to_level_rejects_nan():
    with pytest.raises(ValueError, match="NaN"):
        score_to_level(float("nan"))


def test_as_levels_kinds():
    assert as_levels(7, batch=3).tolist() == [7, 7, 7]
    assert as_levels(0.95, batch=2).tolist() == [9, 9]
    assert as_levels(torch.tensor([1, 2])).tolist() == [1, 2]
    assert as_levels(torch.tensor([0.05, 0.55])).tolist() == [0, 5]


@pytest.mark.parametrize("bad,err", [(10, ValueError), (-1, ValueError), (1.5, ValueError), ("9", TypeError),
                                     (True, TypeError), (torch.tensor([[1]]), ValueError)])
def test_as_levels_rejects(bad, err):
    with pytest.raises(err):
        as_levels(bad)


def test_as_levels_batch_mismatch():
    with pytest.raises(ValueError, match="batch of 3"):
        as_levels(torch.tensor([1, 2]), batch=3)
