"""``iqprior bench control``: the paper's thesis measured in one CPU command.

IQPFR (arXiv 2503.09294, §1, Fig. 2, Fig. 13, Table 4 (a)->(b)): the ground truth
of a restoration training set is of mixed quality, so a model trained on it
restores to the *mean* GT quality; conditioning on each GT's quality level and
asking for the top level at inference lifts the output above that ceiling, and
the output quality rises with the level.

The experiment (data in :mod:`.data`):

1. training pairs: random 128-px items of the pristine sources — procedural
   dead-leaves images (default, :mod:`.leaves`: content whose detail a small
   restorer can predict, the role of FFHQ and a codebook prior in the paper)
   or the bundled sample photographs (``source="photos"``) —, each made
   imperfect by a random grade 0..9; the GT a random 64-px crop of its item,
   its LQ input the Eq. 16 degradation of that GT (``lq_from="pristine"``: of
   the pristine crop, the ablation in which the LQ hides the GT's grade);
2. labels: ``scorer`` (default) scores every training GT's item with the
   library's own pipeline — ``iqprior.create_scorer`` with the regime's
   no-download members (``blur_effect`` for the blurred GTs of the default
   regime), ``iqprior.Calibration.fit`` on the training items
   (the paper's min-max), ``iqprior.score_to_level`` — or ``oracle`` uses
   ``9 - grade``;
3. one small restoration network (:class:`TinyRestorer`) trained twice from the
   same initialisation, seed, data order and steps: the unconditioned baseline
   and its "+" twin, ``iqprior.condition(net, at="encoder", ScoreEmbedding)``
   (paper Table 4 (a) vs (b));
4. evaluation on held-out whole images (LQ by Eq. 16 from the pristine source;
   three dead-leaves images drawn from a fixed seed, or three bundled photographs):
   the "+" output at every level 0..9 and the baseline's, against the pristine
   source (PSNR, SSIM; LPIPS when its weights are present) and by no-reference
   members: the labelling member and held-out ones (``piqe``: not used for the
   labels, a check against optimising one measure).

5. the **premise**: on training pairs, the "+" twin at each GT's own level vs the
   baseline, PSNR against that GT. The claim needs a baseline stuck at the mean GT
   quality; if the LQ reveals the grade, the baseline infers it and the gain is ~0.

Outputs: ``control.json``, ``control.md``, ``control.png`` (see
:mod:`.report` and docs/experiments/control.md, "Does the method work?").

Steps 1-3 are the shared pipeline :mod:`iqprior.uneven_gt` (sources, pool,
labels, training loop), configured here; the demo's recipe
(:mod:`iqprior.demo.recipe`) is its other configuration.

Modules: :mod:`.config` (settings), :mod:`.leaves` (dead-leaves sources),
:mod:`.data` (held-out photographs, evaluation set), :mod:`.model` (the twins),
:mod:`.labelling`, :mod:`.training`, :mod:`.evaluation`, :mod:`.report`, :mod:`.run`.
"""
from __future__ import annotations

from .config import HELD_OUT_MEMBERS, LABEL_MEMBERS, LABEL_MODES, TRACKED_MEMBERS, ControlConfig
from .data import GRADES, LQ_FROM, EvalSet, Pool, imperfect, load_sources, make_eval, make_pool
from .evaluation import evaluate, premise
from .labelling import Labels, make_labels, member_tracking
from .model import TinyRestorer, build_twins
from .report import spearman, summarise, write_outputs
from .run import run_control
from .training import batch_plan, train

__all__ = ["ControlConfig", "run_control", "build_twins", "make_labels", "premise", "evaluate", "train",
           "batch_plan", "TinyRestorer", "Labels", "member_tracking", "spearman", "summarise", "write_outputs",
           "GRADES", "LQ_FROM", "LABEL_MODES", "LABEL_MEMBERS", "HELD_OUT_MEMBERS", "TRACKED_MEMBERS", "Pool",
           "EvalSet", "imperfect", "load_sources", "make_pool", "make_eval"]
