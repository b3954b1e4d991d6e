"""``iqprior bench real``: a released restorer made "+" and fine-tuned on real photos (issue #31).

The control experiment (:mod:`iqprior.bench.control`) shows the paper's thesis
on a small network trained here; this runs the same recipe on a model someone
else trained, with published quality measures and real photographs:

1. **model**: a released file (default Real-ESRGAN's ``realesr-animevideov3``,
   SRVGGNetCompact x4, 0.6 M parameters), read by ``auto`` three times: the released
   model untouched, the unconditioned twin and the ``auto+`` "+" (a zero level
   embedding half-way through its body, :func:`.model.inject_point`);
2. **data** (:mod:`.photos`): GTs of mixed quality from real photographs — random
   192-px items graded 0..9 (blur and JPEG, :data:`.config.REGIME`), 64-px GT crops —
   and LQ inputs by Eq. 16 from the GT, resized by 1/scale to the model's input;
3. **labels**: the library's scorer with published members (:data:`.config.LABEL_MEMBERS`,
   NIQE and BRISQUE) on each item, min-max calibrated over them, ``score_to_level``;
4. **fine-tuning**: the "+" and the twin from the same weights with the same seed,
   data order and steps (L1, Adam, the control experiment's :func:`~iqprior.bench.control.train`);
5. **evaluation** on held-out photos (LQ by Eq. 16 from the pristine source): the "+"
   at every level, the twin, the released model and the LQ, by PSNR/SSIM (LPIPS
   when present) against the source, the labelling members, their ensemble and a
   published member not used for labels (:data:`.config.HELDOUT_MEMBERS`, PIQE).

Outputs: ``real.json``, ``real.md``, ``real.png`` (:mod:`.report`), ``plus/`` and
``baseline/`` (``save_pretrained``). docs/experiments/real.md gives the design and
the measured runs.
"""
from __future__ import annotations

from .config import HELDOUT_MEMBERS, LABEL_MEMBERS, REGIME, RealConfig
from .model import AtGTSize, build_models, inject_point
from .photos import HELDOUT_PHOTOS, TRAIN_PHOTOS, load_photos
from .report import summarise, verdict, write_outputs
from .run import run_real

__all__ = ["RealConfig", "run_real", "build_models", "inject_point", "AtGTSize", "load_photos", "summarise",
           "verdict", "write_outputs", "LABEL_MEMBERS", "HELDOUT_MEMBERS", "REGIME", "TRAIN_PHOTOS",
           "HELDOUT_PHOTOS"]
