"""Evaluation of the control experiment: held-out images against the pristine source, and the premise."""
from __future__ import annotations

from typing import Callable, Mapping, Optional

import torch
from torch import nn

from .config import HELD_OUT_MEMBERS
from .data import GRADES, EvalSet, Pool

#: training pairs on which the premise is measured
PREMISE_SAMPLE = 512


@torch.no_grad()
def premise(base: nn.Module, plus: nn.Module, pool: Pool, levels: torch.Tensor, n: int = PREMISE_SAMPLE,
            chunk: int = 64) -> dict:
    """Does the baseline restore to the mean GT quality? PSNR against each training pair's own GT.

    The paper's premise is that a model trained on GTs of mixed quality cannot tell from the LQ input
    which quality its GT had, so it restores every input to the mean. Then the "+" twin, told each
    GT's level, fits the GTs better than the baseline does (``gain_db`` > 0). If the LQ reveals the grade,
    the baseline infers it by itself and ``gain_db`` is about 0: there is no ceiling for the level to lift.
    """
    from iqprior.scoring.fullref import build_fullref

    psnr = build_fullref("psnr")    # the evaluation's PSNR (pyiqa's, RGB)
    n = min(n, len(pool.gt))
    pb, pp = [], []
    for i in range(0, n, chunk):
        lq, gt, lv = pool.lq[i:i + chunk], pool.gt[i:i + chunk], levels[i:i + chunk]
        for net, acc in ((base, pb), (plus, pp)):
            acc.append(psnr((net(lq) if net is base else net(lq, score=lv)).clamp(0, 1), gt))
    b, p = torch.cat(pb).mean().item(), torch.cat(pp).mean().item()
    return {"pairs": n, "baseline_psnr_to_gt": round(b, 4), "plus_psnr_to_gt": round(p, 4),
            "gain_db": round(p - b, 4)}


Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def eval_metrics(nr_members: tuple[str, ...]) -> tuple[dict[str, Metric], dict[str, Metric], dict[str, str]]:
    """``(full_reference, no_reference, unavailable)``: PSNR, SSIM, LPIPS if present; the NR members."""
    from ..metrics import availability, build_metric, get_metric

    fr, nr, missing = {}, {}, {}
    for names, built in ((("psnr", "ssim", "lpips"), fr), (nr_members, nr)):
        for name in names:
            m = get_metric(name)
            ok, why = availability(m)
            if ok:
                built[name] = build_metric(m)
            else:
                missing[name] = why
    return fr, nr, missing


@torch.no_grad()
def evaluate(base: nn.Module, plus: nn.Module, ev: EvalSet, nr_members: tuple[str, ...], progress: bool = True,
             extra: Optional[Mapping[str, nn.Module]] = None, held_out: tuple[str, ...] = HELD_OUT_MEMBERS
             ) -> tuple[dict, dict[str, torch.Tensor]]:
    """Mean scores per row (``plus`` at each level, ``baseline``, ``lq``, ``source``) and the outputs.

    ``extra``: more unconditioned models, each a row of its own (bench real: the released model untouched);
    ``held_out``: the no-reference members reported as held out (never used for labels)."""
    from tqdm.auto import tqdm

    fr, nr, missing = eval_metrics(nr_members)
    extra = dict(extra or {})
    rows = [f"level{lv}" for lv in range(GRADES)] + ["baseline", *extra, "lq", "source"]
    sums = {r: dict.fromkeys([*fr, *nr], 0.0) for r in rows}
    first: dict[str, torch.Tensor] = {}
    per_image: dict[str, dict[str, float]] = {}
    for i in tqdm(range(len(ev.names)), desc="evaluate", disable=not progress, unit="img"):
        lq, src = ev.lq[i], ev.source[i]
        outs = {f"level{lv}": plus(lq, score=lv) for lv in range(GRADES)}
        outs.update(baseline=base(lq), **{k: m(lq) for k, m in extra.items()}, lq=lq, source=src)
        for r, y in outs.items():
            y = y.clamp(0, 1)
            if i == 0:
                first[r] = y[0]
            for k, f in fr.items():
                v = float(f(y, src)[0]) if r != "source" or k == "lpips" else 0.0
                sums[r][k] += v
                if k == "psnr" and r in ("lq", "baseline", "level0", "level9"):
                    per_image.setdefault(ev.names[i], {})[r] = round(v, 3)
            for k, f in nr.items():
                sums[r][k] += float(f(y)[0])
    n = len(ev.names)
    means = {r: {k: v / n for k, v in d.items()} for r, d in sums.items()}
    for k in fr:   # the source against itself: PSNR is infinite, SSIM 1; not reported
        if k != "lpips":
            means["source"].pop(k, None)
    return {"means": means, "per_image_psnr": per_image, "fr": list(fr), "nr": list(nr),
            "held_out": [k for k in nr if k in held_out],
            "unavailable": missing}, first
