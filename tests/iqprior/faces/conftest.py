"""MTCNN's weight file for the face tests, and eye centres marked by hand on two real portraits.

The file is one the install step fetches (`make install` runs `iqprior weights download` for it), found in
the user's weights directories through the shared ``released_weights`` fixture: a missing file fails the
test, it is not skipped.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from iqprior.mtcnn_release import MTCNN_FILE

# Eye centres (x, y) marked by hand, independently of any detector: the middle of the dark iris, read off
# 8x and 16x nearest-neighbour zooms of the eye regions with a 1-px grid (and checked against the centroid of
# the darkest 20% of pixels in a window around each eye: within 1.5 px of these marks).
MARKED_EYES = {
    "astronaut": [(203.0, 100.5), (246.5, 102.5)],
    "grace_hopper": [(221.5, 172.0), (304.5, 169.0)],
}


@pytest.fixture
def mtcnn_env(released_weights) -> Path:
    """The MTCNN file's path; ``IQPRIOR_WEIGHTS`` names the user's directories (read-only) meanwhile."""
    return released_weights(MTCNN_FILE)


@pytest.fixture
def marked_eyes() -> dict[str, list[tuple[float, float]]]:
    return MARKED_EYES
