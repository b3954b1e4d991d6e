"""Benchmarks of the IQPFR paper's evaluation (arXiv 2503.09294) and beyond.

- :mod:`.metrics` — the columns of the paper's tables (1, 2, 6): titles and decimals over ``iqprior.scoring.specs.SPECS``;
- :mod:`.runner` — cached, resumable restoration of a folder by any registered adapter;
- :mod:`.quality` — ``iqprior bench quality``: restore, score, paper-style tables;
- :mod:`.tables` — Markdown / CSV tables (best / second best, "+" deltas);
- :mod:`.speed` — ``iqprior bench speed``: latency, images/s, peak memory, "+" / base ratio
  (settings and rows in :mod:`.speed_config`, the report in :mod:`.speed_report`);
- :mod:`.profiling` — the benchmarks' one clock and memory probe (``timed``, ``interleaved``, ``peak_memory``),
  used by ``bench speed`` and every ``benchmarks/bench_*.py`` script;
- :mod:`.control` — ``iqprior bench control``: the paper's thesis measured on CPU (a subpackage:
  config, data, model, labelling, training, evaluation, report, run);
- :mod:`.real` — ``iqprior bench real``: a released restorer (Real-ESRGAN) made "+" and fine-tuned on real
  photos, against its twin (reuses :mod:`.control`'s pieces);
- :mod:`.overopt` — ``iqprior bench overopt``: optimised vs held-out IQA gains;
- :mod:`.figures` — comparison grid (Fig. 4), level sweep (Fig. 13), score histogram (Fig. 2).

Nothing heavy is imported here; see docs/guides/evaluating.md for usage.
"""
