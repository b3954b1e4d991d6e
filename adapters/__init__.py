"""Upstream restoration models behind one interface, and their "+" variants.

>>> import adapters
>>> model = adapters.create("codeformer+", checkpoint="codeformer.pth")   # doctest: +SKIP
>>> y = model(x, score=9)   # x, y: (B, 3, H, W) RGB in [0, 1]; y not clamped
>>> tiny = adapters.create("codeformer+", tiny=True)   # small random-weight config (tests, examples)

Entries are ``"module:function"`` strings resolved on first use, so importing
this package imports no model code.

Layout. Infrastructure at the top level, one package per model below it:

- ``base.py``: :class:`Adapter`, the common shape of every adapter;
- ``specs.py``: :data:`~adapters.specs.SPECS`, one typed description
  (:class:`AdapterSpec`) per adapter, the single source of every per-model fact
  (builder, base of a "+" variant, files, task, native size and
  :class:`~adapters.specs.SizeRequirements`, the "+" injection point as a module
  path of ``net`` or the ``"built in"`` / ``"from the file"`` flag, controls,
  export refusal, licence, fast path, ``tiny`` options...);
- ``registry.py``: :func:`create`, :func:`register`, :func:`spec`,
  :func:`list_adapters` and :func:`~adapters.registry.configure`, the one place a
  built model gets its spec's task, controls, export refusal and fast path
  (``create`` and every ``build_*`` function end there, so both return
  identically configured models);
- ``plus.py``: :func:`~adapters.plus.plus_builder`, the one "+" builder (the base
  class under the "+" name, its level embedding at the spec's ``condition_at``,
  shaped by :meth:`Adapter.condition_shape`);
- ``testing/``: the adapter contract, :func:`adapters.testing.check_adapter`;
- ``codeformer/``, ``daefr/``, ``difface/``, ``puienet/``, ``nu2net/``,
  ``minires/``, ``iqpfr/``, ``auto/`` (any file spandrel loads): each model's
  architecture port (``arch.py``; DifFace: ``unet.py``,
  ``swinir.py`` and its weightless ``sampler.py``), its adapter and "+" builder
  (``adapter.py``). Building blocks several networks share (the taming VQGAN
  blocks, the Transformer layer) live once in :mod:`iqprior.models.layers`
  (in the core, because IQPFR uses them too and the core never imports
  ``adapters``).

Where a new adapter goes: a package ``adapters/<model>/`` with the port in
``arch.py`` (upstream's ``state_dict`` keys; import shared blocks from
:mod:`iqprior.models.layers` rather than copying them) and ``adapter.py``
holding the :class:`Adapter` subclass (with its ``condition_shape``) and its
``build_<model>`` function, decorated with ``@registry.builder("<name>")``, and
``build_<model>_plus = plus_builder("<model>+", make)``; then one ``_pair(...)``
entry in ``specs.py`` (builder strings ``"adapters.<model>.adapter:build_<model>"``,
files, task, sizes, the "+" injection point ``plus_at``, controls, fast path,
``tiny`` options), tests in ``tests/adapters/<model>/``;
``tests/adapters/test_contract.py`` checks it with the contract suite and
``tests/adapters/test_specs.py`` checks its description against what it builds.

User adapters: declare them in the ``iqprior.adapters`` entry-point group of
your package (``name = "module:function"``; the function returns an
:class:`Adapter`) and every ``iqprior`` command sees them, e.g. in
``pyproject.toml``::

    [project.entry-points."iqprior.adapters"]
    "rrdb+" = "my_package.rrdb:build_rrdb_plus"

``register`` adds one for the current process only. A user adapter's spec
leaves ``task``, ``controls``, ``export_refused`` (and the rest) unset unless
given, so its class attributes stand. Check an adapter with
:func:`adapters.testing.check_adapter`.
"""
from __future__ import annotations

from iqprior.checkpoint import CheckpointError

from .base import Adapter
from .registry import (
    ENTRY_POINT_GROUP,
    builder,
    configure,
    create,
    files_used_by,
    finetune_weights,
    list_adapters,
    official_weights,
    register,
    spec,
)
from .specs import AdapterSpec

__all__ = ["create", "list_adapters", "register", "spec", "Adapter", "AdapterSpec", "CheckpointError",
           "official_weights", "finetune_weights", "files_used_by", "configure", "builder", "ENTRY_POINT_GROUP"]
