"""``run_real``: ``iqprior bench real`` from the photos to ``real.json`` and the two fine-tuned models."""
from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..control.data import make_eval, make_pool
from ..control.evaluation import evaluate
from ..control.labelling import make_labels
from ..control.training import batch_plan, train
from .config import RealConfig
from .model import build_models, param_groups
from .photos import HELDOUT_PHOTOS, TRAIN_PHOTOS, load_photos
from .report import STRIP_LEVELS, summarise, write_outputs

log = logging.getLogger("iqprior.bench")


@torch.no_grad()
def strips(ev, models: dict, plus) -> dict[str, dict[str, torch.Tensor]]:
    """The figure's outputs: the first LQ draw of every held-out photo through each model."""
    out = {}
    for name, lq, src in zip(ev.names, ev.lq, ev.source):
        photo = name.split("#")[0]
        if photo in out:
            continue
        row = {k: m(lq)[0] for k, m in models.items()}
        row.update({f"level{lv}": plus(lq, score=lv)[0] for lv in STRIP_LEVELS}, lq=lq[0], source=src[0])
        out[photo] = row
    return out


def _environment() -> dict:
    """The floating-point build a run trained on: torch and numpy versions, the CPU kernels torch picked."""
    import platform

    import numpy

    return {"torch": torch.__version__, "numpy": numpy.__version__, "cpu_capability":
            torch.backends.cpu.get_cpu_capability(), "machine": platform.machine()}


def write_recipe(res: dict, directory: Path) -> Path:
    """``recipe.json`` next to the "+" model: the command that rebuilds it (same seed, one thread, the same
    released file, by sha256), what it measured, and the floating-point build it ran on (``environment``: the
    rebuild is bit for bit on the same build; another CPU or library build drifts within floating-point error)."""
    import json

    from iqprior.file_hash import sha256_of
    from iqprior.io import atomic_write_text

    cfg = res["config"]
    info = res["model_info"]
    recipe = {
        "model": "auto+", "released_file": res["model"], "released_sha256": info.get("sha256"),
        "licence": "BSD-3-Clause (Real-ESRGAN, Xintao Wang et al.)" if "realesr" in res["model"].lower() else None,
        "command": f"iqprior bench real --out DIR --seed {cfg['seed']} --threads {cfg['threads_used']}"
                   + ("" if cfg["checkpoint"] == "realesr-animevideov3.pth" else f" --checkpoint {cfg['checkpoint']}"),
        "model_sha256": sha256_of(directory / "model.safetensors"), "config": cfg, "photos": res["photos"],
        "members_label": res["members_label"], "members_heldout": res["members_heldout"],
        "level9_ensemble": res["plus"]["ensemble"][-1], "twin_ensemble": res["baseline"]["ensemble"],
        "released_ensemble": res["released"]["ensemble"], "spearman_level_quality": res["spearman_level_quality"],
        "verdict": res["verdict"], "wall_time_s": res["wall_time_s"], "cpu_time_s": res.get("cpu_time_s"),
        "environment": _environment(),
    }
    path = directory / "recipe.json"
    atomic_write_text(path, json.dumps(recipe, indent=2) + "\n")
    return path


def run_real(cfg: RealConfig) -> dict:
    """Fine-tune the "+" and its twin, evaluate, write ``real.json``, ``real.md``, ``real.png``, ``plus/``,
    ``baseline/`` under ``cfg.out``; returns the ``real.json`` dictionary (plus ``files``)."""
    t0, c0 = time.perf_counter(), time.process_time()
    old_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    out = Path(cfg.out)
    try:
        released, base, plus, info = build_models(cfg)   # first: a missing model file fails before any work
        train_src, held = load_photos()
        rng = np.random.default_rng(cfg.seed)
        pool = make_pool(train_src, cfg.pool, cfg.crop, rng, progress=cfg.progress, support=cfg.support,
                         lq_from="gt", regime=cfg.regime)
        ev = make_eval(held, cfg.eval_draws, np.random.default_rng(cfg.seed + 2), cfg.regime)
        labels = make_labels(pool, "scorer", members=cfg.label_members, tracking=False, rule=cfg.level_rule)
        log.info("labels %s: level counts %s, rho(quality, score) %.3f", ",".join(cfg.label_members),
                 torch.bincount(labels.level, minlength=10).tolist(), labels.rho_grade)
        plan = batch_plan(len(pool.gt), cfg.steps, cfg.batch, cfg.seed)
        torch.manual_seed(cfg.seed)
        loss_base = train(base, pool, None, plan, cfg, "fine-tune twin", loss=cfg.loss,
                          groups=param_groups(base, cfg))
        torch.manual_seed(cfg.seed)
        loss_plus = train(plus, pool, labels.level, plan, cfg, "fine-tune '+'", loss=cfg.loss,
                          groups=param_groups(plus, cfg))
        for m in (base, plus):
            m.requires_grad_(False)
        members = tuple(dict.fromkeys(cfg.label_members + cfg.heldout_members))
        ev_res, _ = evaluate(base, plus, ev, members, cfg.progress, extra={"released": released},
                             held_out=cfg.heldout_members)
        ev_res["names"] = list(ev.names)
        figs = strips(ev, {"released": released, "baseline": base}, plus)
        out.mkdir(parents=True, exist_ok=True)
        plus.adapter.save_pretrained(out / "plus")
        base.adapter.save_pretrained(out / "baseline")
    finally:
        torch.set_num_threads(old_threads)
    photos = {"train": list(TRAIN_PHOTOS), "heldout": list(HELDOUT_PHOTOS), "downscale": 1.5}
    res = summarise(cfg, info, labels, ev_res, photos, {"baseline": loss_base, "plus": loss_plus},
                    time.perf_counter() - t0)
    res["cpu_time_s"] = round(time.process_time() - c0, 1)  # this process's CPU time: the machine is shared
    res["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    res["config"]["threads_used"] = int(cfg.threads or old_threads)
    files = write_outputs(res, figs, out)
    write_recipe(res, out / "plus")
    res["files"] = {**{k: str(v) for k, v in files.items()}, "plus": str(out / "plus"),
                    "baseline": str(out / "baseline")}
    return res
