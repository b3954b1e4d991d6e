"""``iqprior bench control``: the paper's thesis measured in one CPU command.

IQPFR (arXiv 2503.09294, §1, Fig. 2, Fig. 13, Table 4 (a)->(b)): the ground truth
of a restoration training set is of mixed quality, so a model trained on it
restores to the *mean* GT quality; conditioning on each GT's quality level and
asking for the top level at inference lifts the output above that ceiling, and
the output quality rises with the level.

The experiment (data in :mod:`.control_data`):

1. training pairs: random 128-px items of the bundled images, each made
   imperfect by a random grade 0..9; the GT a random 64-px crop of its item,
   its LQ input the Eq. 16 degradation of that GT (``lq_from="pristine"``: of
   the pristine crop, the ablation in which the LQ hides the GT's grade);
2. labels: ``scorer`` (default) scores every training GT's item with the
   library's own pipeline — ``iqprior.create_scorer`` with the no-download
   members ``blur_effect`` and ``blockiness`` (their errors differ: one sees
   blur, the other JPEG), ``iqprior.Calibration.fit`` on the training items
   (the paper's min-max), ``iqprior.score_to_level`` — or ``oracle`` uses
   ``9 - grade``;
3. one small restoration network (:class:`TinyRestorer`) trained twice from the
   same initialisation, seed, data order and steps: the unconditioned baseline
   and its "+" twin, ``iqprior.condition(net, at="encoder", ScoreEmbedding)``
   (paper Table 4 (a) vs (b));
4. evaluation on held-out whole images (LQ by Eq. 16 from the pristine source):
   the "+" output at every level 0..9 and the baseline's, against the pristine
   source (PSNR, SSIM; LPIPS when its weights are present) and by no-reference
   members: the labelling member and held-out ones (``piqe``: not used for the
   labels, a check against optimising one measure).

5. the **premise**: on training pairs, the "+" twin at each GT's own level vs the
   baseline, PSNR against that GT. The claim needs a baseline stuck at the mean GT
   quality; if the LQ reveals the grade, the baseline infers it and the gain is ~0.

Outputs: ``control.json``, ``control.md``, ``control.png`` (see
:mod:`.control_report` and benchmarks/README.md, "Does the method work?").
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from .control_data import GRADES, LQ_FROM, EvalSet, Pool, load_sources, make_eval, make_pool
from .control_report import spearman, summarise, write_outputs

log = logging.getLogger("iqprior.bench")

LABEL_MODES = ("scorer", "oracle")
#: members that label the training GTs (mode "scorer"): see benchmarks/README.md for why
LABEL_MEMBERS = ("blur_effect", "blockiness")
#: no-reference members only evaluated (never used for labels): the over-optimisation check
HELD_OUT_MEMBERS = ("piqe",)
#: every offline member whose agreement with the GT grade is measured and reported
TRACKED_MEMBERS = ("blur_effect", "blockiness", "piqe", "entropy", "uiqm", "uciqe")
INJECT_AT = "encoder"
#: training GTs on which each member's agreement with the grade is measured (entropy costs ~7 ms each)
TRACKING_SAMPLE = 512


@dataclass(frozen=True)
class ControlConfig:
    """Settings of :func:`run_control`; defaults run in about 10 minutes on 2 CPU cores."""

    out: Path = Path("results/control")
    steps: int = 3000
    labels: str = "scorer"
    seed: int = 0
    #: the LQ input degraded from the GT (Eq. 16, default) or from the pristine crop (ablation: the grade hidden)
    lq_from: str = "gt"
    pool: int = 1536
    crop: int = 64
    #: side of the item each training GT is cropped from, the image the labels score
    support: int = 128
    batch: int = 8
    lr: float = 2e-3
    width: int = 16
    eval_draws: int = 4
    threads: Optional[int] = None
    progress: bool = True
    data: Optional[Path] = None

    def __post_init__(self):
        if self.labels not in LABEL_MODES:
            raise ValueError(f"labels must be one of {LABEL_MODES}, got {self.labels!r}")
        if self.lq_from not in LQ_FROM:
            raise ValueError(f"lq_from must be one of {LQ_FROM}, got {self.lq_from!r}")
        for name in ("steps", "pool", "batch", "width", "eval_draws"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.crop < 16 or self.crop % 4:
            raise ValueError(f"crop must be a multiple of 4 and >= 16, got {self.crop}")
        if self.support < self.crop:
            raise ValueError(f"support must be >= crop ({self.crop}), got {self.support}")


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TinyRestorer(nn.Module):
    """A small residual encoder-decoder restorer: ``(B, 3, H, W)`` LQ in [0, 1] -> restored, same shape (unclamped).

    ``x + tail(up(decoder(encoder(down(head(x))))))``: the whole correction passes through
    ``encoder`` (half resolution, ``2 * width`` channels), the feature the "+" twin conditions,
    as IQPFR adds its level embedding to the LQ encoder's output ``Z_l`` and decodes from it.
    There is deliberately no full-resolution skip around it: detail carried by an unconditioned
    skip would bypass the level (an earlier version with a U-Net skip learned almost no level
    effect). ``H`` and ``W`` must be even.
    """

    def __init__(self, width: int = 16, blocks: int = 2):
        super().__init__()
        w = int(width)
        self.head = nn.Sequential(nn.Conv2d(3, w, 3, padding=1), nn.ReLU(inplace=True))
        self.down = nn.Sequential(nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.encoder = nn.Sequential(*[ResBlock(2 * w) for _ in range(blocks)])
        self.decoder = nn.Sequential(*[ResBlock(2 * w) for _ in range(blocks)])
        self.up = nn.Sequential(nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.PixelShuffle(2), nn.ReLU(inplace=True))
        self.tail = nn.Conv2d(w, 3, 3, padding=1)
        self.feature_channels = 2 * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            raise ValueError(f"TinyRestorer needs even height and width, got {tuple(x.shape[-2:])}")
        return x + self.tail(self.up(self.decoder(self.encoder(self.down(self.head(x))))))


# -- labels ---------------------------------------------------------------------------------------
@dataclass
class Labels:
    level: torch.Tensor                          # (N,) long 0..9
    mode: str
    members: tuple[str, ...] = ()
    calibration: dict = field(default_factory=dict)
    rho_grade: float = float("nan")              # Spearman(grade, ensemble score); 1 for the oracle
    tracking: dict = field(default_factory=dict)  # member -> Spearman(-grade, normalised score)


def _raw_scores(scorer, pool: Pool, n: Optional[int] = None, chunk: int = 256) -> dict[str, torch.Tensor]:
    """``scorer.raw`` of the pool's items (the first ``n``), converted to float a chunk at a time."""
    n = len(pool.item) if n is None else min(n, len(pool.item))
    parts = [scorer.raw(pool.items(i, min(i + chunk, n))) for i in range(0, n, chunk)]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def member_tracking(pool: Pool, members=TRACKED_MEMBERS) -> dict[str, float]:
    """Spearman's rho between quality (``-grade``) and each member's score of the items, + = tracks."""
    import iqprior

    grade = pool.grade[:TRACKING_SAMPLE]
    out = {}
    for name in members:
        scorer = iqprior.create_scorer([name], device="cpu", batch_size=64)
        raw = _raw_scores(scorer, pool, TRACKING_SAMPLE)[name]
        flip = -1.0 if scorer.specs[0].lower_better else 1.0
        out[name] = round(spearman((-grade).tolist(), (flip * raw).tolist()), 4)
    return out


def make_labels(pool: Pool, mode: str, members=LABEL_MEMBERS, tracking: bool = True) -> Labels:
    """Condition levels of the training GTs: the library's scorer on their items (calibrated on them) or the
    oracle."""
    import iqprior

    track = member_tracking(pool) if tracking else {}
    if mode == "oracle":
        return Labels(GRADES - 1 - pool.grade, mode, (), {}, 1.0, track)
    scorer = iqprior.create_scorer(list(members), device="cpu", batch_size=64)
    raw = _raw_scores(scorer, pool)
    cal = iqprior.Calibration.fit(raw)
    scorer.calibration = cal
    s = scorer.combine(raw)
    level = iqprior.score_to_level(s)
    cal_dict = {n: {"min": r.min, "max": r.max, "lower_better": r.lower_better} for n, r in cal.members.items()}
    return Labels(level, mode, tuple(members), cal_dict, round(spearman((-pool.grade).tolist(), s.tolist()), 4),
                  track)


# -- training -------------------------------------------------------------------------------------
def batch_plan(n: int, steps: int, batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(steps, batch)`` and an augmentation code ``(steps, batch)`` in 0..7 (flips x rot90)."""
    rng = np.random.default_rng(seed + 1)
    idx = np.concatenate([rng.permutation(n) for _ in range(steps * batch // n + 1)])[:steps * batch]
    return idx.reshape(steps, batch), rng.integers(0, 8, size=(steps, batch))


def _augment(x: torch.Tensor, codes: np.ndarray) -> torch.Tensor:
    out = []
    for img, c in zip(x, codes):
        if c & 1:
            img = img.flip(-1)
        out.append(torch.rot90(img, int(c >> 1), dims=(-2, -1)))
    return torch.stack(out)


def train(model: nn.Module, pool: Pool, levels: Optional[torch.Tensor], plan, cfg: ControlConfig,
          desc: str) -> list[float]:
    """Train ``model`` with the mean squared error on ``plan``; a "+" model gets ``score=levels[batch]``.

    MSE rather than L1: its minimiser is the conditional mean, so with the level of a pristine GT
    the "+" twin's ideal output is ``E[pristine | LQ]``, the best possible PSNR against the
    pristine source, while the baseline's is the mean over all GT grades. Returns the loss curve.
    """
    from tqdm.auto import tqdm

    idx, aug = plan
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=len(idx), eta_min=cfg.lr * 0.05)
    model.train()
    losses = []
    for step in tqdm(range(len(idx)), desc=desc, disable=not cfg.progress, unit="step"):
        b = torch.from_numpy(idx[step])
        lq, gt = _augment(pool.lq[b], aug[step]), _augment(pool.gt[b], aug[step])
        y = model(lq) if levels is None else model(lq, score=levels[b])
        loss = (y - gt).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    return losses


def build_twins(cfg: ControlConfig) -> tuple[nn.Module, nn.Module]:
    """The baseline and its "+" twin, from one seeded initialisation (the embedding starts at zero)."""
    import iqprior

    torch.manual_seed(cfg.seed)
    base = TinyRestorer(cfg.width)
    twin = copy.deepcopy(base)
    emb = iqprior.ScoreEmbedding(levels=GRADES, shape=(twin.feature_channels, 1, 1))
    plus = iqprior.condition(twin, at=INJECT_AT, embedding=emb, mode="add")
    return base, plus


# -- evaluation -----------------------------------------------------------------------------------
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
    from .metrics import availability, build_metric, get_metric

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
def evaluate(base: nn.Module, plus: nn.Module, ev: EvalSet, nr_members: tuple[str, ...], progress: bool = True
             ) -> tuple[dict, dict[str, torch.Tensor]]:
    """Mean scores per row (``plus`` at each level, ``baseline``, ``lq``, ``source``) and the outputs."""
    from tqdm.auto import tqdm

    fr, nr, missing = eval_metrics(nr_members)
    rows = [f"level{lv}" for lv in range(GRADES)] + ["baseline", "lq", "source"]
    sums = {r: dict.fromkeys([*fr, *nr], 0.0) for r in rows}
    first: dict[str, torch.Tensor] = {}
    per_image: dict[str, dict[str, float]] = {}
    for i in tqdm(range(len(ev.names)), desc="evaluate", disable=not progress, unit="img"):
        lq, src = ev.lq[i], ev.source[i]
        outs = {f"level{lv}": plus(lq, score=lv) for lv in range(GRADES)}
        outs.update(baseline=base(lq), lq=lq, source=src)
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
            "held_out": [k for k in nr if k in HELD_OUT_MEMBERS],
            "unavailable": missing}, first


def run_control(cfg: ControlConfig) -> dict:
    """Run the experiment; write ``control.json``, ``control.md``, ``control.png`` under ``cfg.out``."""
    t0 = time.perf_counter()
    old_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    try:
        rng = np.random.default_rng(cfg.seed)
        train_src, held = load_sources(cfg.data)
        pool = make_pool(train_src, cfg.pool, cfg.crop, rng, progress=cfg.progress, support=cfg.support,
                         lq_from=cfg.lq_from)
        ev = make_eval(held, cfg.eval_draws, cfg.crop, np.random.default_rng(cfg.seed + 2))
        labels = make_labels(pool, cfg.labels)
        log.info("labels %s: level counts %s, rho(quality, score) %.3f", cfg.labels,
                 torch.bincount(labels.level, minlength=GRADES).tolist(), labels.rho_grade)
        base, plus = build_twins(cfg)
        plan = batch_plan(len(pool.gt), cfg.steps, cfg.batch, cfg.seed)
        loss_base = train(base, pool, None, plan, cfg, "train baseline")
        loss_plus = train(plus, pool, labels.level, plan, cfg, "train '+' twin")
        nr_members = tuple(dict.fromkeys(labels.members + LABEL_MEMBERS + HELD_OUT_MEMBERS))
        ev_res, strip = evaluate(base, plus, ev, nr_members, cfg.progress)
        ev_res["premise"] = premise(base, plus, pool, labels.level)
    finally:
        torch.set_num_threads(old_threads)
    result = summarise(cfg, labels, pool, ev, ev_res, loss_base, loss_plus, time.perf_counter() - t0)
    result["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    result["files"] = {k: str(v) for k, v in write_outputs(result, strip, Path(cfg.out)).items()}
    return result
