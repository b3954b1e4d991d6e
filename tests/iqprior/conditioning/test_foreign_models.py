"""condition() on architectures nobody here wrote (basicsr's RRDBNet, SwinIR, HiFaceGAN): the model x check matrix.

The checks live in benchmarks/conditioning_matrix.py (which prints the table); each is a real run that
compares against the plain eager call, see that module's docstring.
"""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("conditioning_matrix", ROOT / "benchmarks" / "conditioning_matrix.py")
matrix = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(matrix)

SLOW = {("HiFaceGAN", "compile"), ("HiFaceGAN", "export"), ("RRDBNet", "compile")}  # > 10 s on a loaded CPU
CASES = [pytest.param(m, c, marks=[pytest.mark.slow] if (m, c) in SLOW else [])
         for m in matrix.MODELS for c in matrix.CHECKS]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("model,check", CASES)
def test_matrix(model, check):
    assert matrix.run_check(model, check).startswith("ok")
