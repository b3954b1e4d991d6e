"""The bundled sample images, shipped as package data (about 1.4 MB).

Four aligned faces (``faces/``), two underwater photographs (``underwater/``) and
two whole photographs (``whole/``): what ``make demo`` scores, what the demo app
offers as samples, what :mod:`iqprior.demo.recipe` trains the bundled model on and
what ``iqprior bench control --source photos`` uses. A source checkout also sees
them as ``examples/data`` (a link to this folder).
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path


def root() -> Path:
    """The folder holding the sample images (inside the installed package)."""
    return Path(str(resources.files(__name__)))
