"""``run_control``: the control experiment from data to ``control.json`` (steps 1-5 of :mod:`iqprior.bench.control`)."""
from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .config import HELD_OUT_MEMBERS, LABEL_MEMBERS, ControlConfig
from .data import GRADES, load_sources, make_eval, make_pool
from .evaluation import evaluate, premise
from .labelling import make_labels
from .leaves import leaves_sources
from .model import build_twins
from .report import summarise, write_outputs
from .training import batch_plan, train
from .visibility import grade_visibility

log = logging.getLogger("iqprior.bench")


def run_control(cfg: ControlConfig) -> dict:
    """Run the experiment; write ``control.json``, ``control.md``, ``control.png`` under ``cfg.out``."""
    t0 = time.perf_counter()
    old_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    try:
        rng = np.random.default_rng(cfg.seed)
        train_src, held = leaves_sources(cfg.seed) if cfg.source == "leaves" else load_sources(cfg.data)
        pool = make_pool(train_src, cfg.pool, cfg.crop, rng, progress=cfg.progress, support=cfg.support,
                         lq_from=cfg.lq_from, regime=cfg.degradation)
        ev = make_eval(held, cfg.eval_draws, np.random.default_rng(cfg.seed + 2), cfg.degradation)
        visibility = grade_visibility(pool, cfg.degradation.label_members)
        labels = make_labels(pool, cfg.labels, members=cfg.degradation.label_members)
        log.info("labels %s: level counts %s, rho(quality, score) %.3f", cfg.labels,
                 torch.bincount(labels.level, minlength=GRADES).tolist(), labels.rho_grade)
        base, plus = build_twins(cfg)
        plan = batch_plan(len(pool.gt), cfg.steps, cfg.batch, cfg.seed)
        loss_base = train(base, pool, None, plan, cfg, "train baseline")
        loss_plus = train(plus, pool, labels.level, plan, cfg, "train '+' twin")
        nr_members = tuple(dict.fromkeys(labels.members + LABEL_MEMBERS + HELD_OUT_MEMBERS))
        ev_res, strip = evaluate(base, plus, ev, nr_members, cfg.progress)
        ev_res["premise"] = premise(base, plus, pool, labels.level)
        ev_res["grade_visibility"] = visibility
    finally:
        torch.set_num_threads(old_threads)
    result = summarise(cfg, labels, pool, ev, ev_res, loss_base, loss_plus, time.perf_counter() - t0)
    result["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    result["files"] = {k: str(v) for k, v in write_outputs(result, strip, Path(cfg.out)).items()}
    return result
