"""One pipeline for training a small restorer on ground truth of uneven quality (IQPFR, arXiv 2503.09294, §1, Fig. 2).

The paper's premise at toy scale, in four steps, each a module:

1. :mod:`.sources`: pristine sources (an image folder, by default the bundled
   :mod:`iqprior.sample_images`, box-downscaled; some held out);
2. :mod:`.pool`: training pairs: random items of the sources, each made imperfect
   by a random grade 0..9 of a :class:`Regime`, the GT a random crop of its item and
   the LQ input the paper's Eq. 16 degradation of the GT (or of the pristine crop);
3. :mod:`.labels`: condition levels of the GTs by the library's scorer, calibrated
   on the items (the paper's min-max), by ``floor(10 s)`` or by rank;
4. :mod:`.loop`: one seeded batch plan (data order, flips and rotations) and the
   training loop (Adam, cosine schedule) over any model and loss.

``iqprior bench control`` (:mod:`iqprior.bench.control`) and the recipe of the
demo's bundled model (:mod:`iqprior.demo.recipe`) are two configurations of it.
"""
from __future__ import annotations

from .labels import LEVEL_RULES, raw_scores, score_levels
from .loop import augment, batch_plan, train_steps
from .pool import GRADES, LQ_FROM, Pool, Regime, imperfect, make_pool
from .sources import Source, bundled_data_dir, load_sources
from .stats import spearman

__all__ = ["Source", "bundled_data_dir", "load_sources", "GRADES", "LQ_FROM", "Regime", "Pool", "imperfect",
           "make_pool", "LEVEL_RULES", "raw_scores", "score_levels", "batch_plan", "augment", "train_steps",
           "spearman"]
