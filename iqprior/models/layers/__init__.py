"""Building blocks shared by several networks, each defined once.

- :mod:`~iqprior.models.layers.taming`: the taming-transformers VQGAN blocks
  (``ResBlock``, ``AttnBlock``, ``Downsample``, ``Upsample``, ``group_norm``,
  ``swish``) of CodeFormer's VQGAN, IQPFR and DAEFR;
- :mod:`~iqprior.models.layers.transformer`: the code-prediction Transformer
  layer of CodeFormer, DAEFR and IQPFR;
- :mod:`~iqprior.models.layers.fusion`: CodeFormer's fidelity fusion blocks and
  AdaIN lookup (CodeFormer, and the released IQPIR form of IQPFR).

They sit in the core because IQPFR (:mod:`iqprior.models.iqpfr`) uses them and
the core never imports :mod:`adapters`; the adapters' ports import them from here.
"""
