"""``auto`` / ``auto+``: any restoration model spandrel (chaiNNer-org/spandrel, MIT) loads becomes a "+" model.

>>> import adapters
>>> model = adapters.create("auto+", checkpoint="GFPGANv1.4.pth")   # doctest: +SKIP
>>> y = model(x, score=9)   # x (B, 3, H, W) in [0, 1]; y (B, 3, scale·H, scale·W), not clamped

- :mod:`.reading`: the file through iqprior's safe reader, then spandrel's
  ``ModelLoader().load_from_state_dict`` (never spandrel's file loader);
- :mod:`.families`: where each family's level embedding goes, and why; the
  unsupported families;
- :mod:`.table`: :func:`families_markdown` (the docs table);
- :mod:`.probe`: the automatic injection point of families without an entry;
- :mod:`.adapter`: :class:`AutoAdapter` (pre/post-processing from spandrel's descriptor).

Importing this package imports spandrel (``pip install spandrel``; the ``auto``
extra of iqprior, included in ``[dev]``).
"""
try:
    import spandrel  # noqa: F401
except ImportError as e:  # one actionable line from adapters.create("auto", ...)
    raise ImportError("the auto / auto+ adapters need spandrel: pip install 'iqprior[auto]' (or pip install "
                      "'spandrel>=0.4,<0.5')") from e

from .adapter import AutoAdapter, build_auto, build_auto_plus  # noqa: E402
from .families import FAMILIES, UNSUPPORTED  # noqa: E402
from .table import families_markdown  # noqa: E402

__all__ = ["AutoAdapter", "build_auto", "build_auto_plus", "FAMILIES", "UNSUPPORTED", "families_markdown"]
