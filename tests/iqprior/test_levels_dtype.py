"""Issue 29: a score's level is floor(10·s) in the score's own precision, as the authors' code computes it.

``(score * 10).floor()`` on a float32 tensor (IQPIR's ``CodeFormer.forward``) gives 9 for 0.9; up-casting
the float32 value 0.89999998 to float64 first gives 8. Every k/10 must map to level k in every form.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from iqprior.levels import as_levels, score_to_level

FORMS = {
    "float32 tensor": lambda s: torch.tensor(s, dtype=torch.float32),
    "float64 tensor": lambda s: torch.tensor(s, dtype=torch.float64),
    "float16 tensor": lambda s: torch.tensor(s, dtype=torch.float16),
    "bfloat16 tensor": lambda s: torch.tensor(s, dtype=torch.bfloat16),
    "(B,) float32 tensor": lambda s: torch.tensor([s, s], dtype=torch.float32),
    "numpy float32": lambda s: np.float32(s),
    "numpy float64": lambda s: np.float64(s),
    "numpy float32 array": lambda s: np.array([s], dtype=np.float32),
    "python float": lambda s: s,
}


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("k", range(10))
def test_every_tenth_maps_to_its_level(form, k):
    score = FORMS[form](k / 10)
    assert as_levels(score).tolist()[0] == k
    assert score_to_level(score).reshape(-1).tolist()[0] == k


def test_float32_point_nine_is_level_nine():
    assert as_levels(torch.tensor(0.9)).item() == 9
    assert score_to_level(torch.tensor(0.9)).item() == 9
    assert as_levels(torch.tensor(0.7)).item() == 7


def test_floor_still_floors_within_a_bin():
    assert as_levels(torch.tensor([0.8999, 0.95, 1.0, 0.0999])).tolist() == [8, 9, 9, 0]
    assert as_levels(np.float32(0.8999)).item() == 8
