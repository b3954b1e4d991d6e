"""Outputs of ``iqprior bench control``: ``control.json``, ``control.md`` and ``control.png``.

``control.json`` fields (names fixed; checks rely on them): ``labels`` (``"scorer"``
or ``"oracle"``), ``levels`` (0..9), ``plus_<m>`` (one value per level) /
``baseline_<m>`` / ``lq_<m>`` / ``spearman_level_<m>`` for ``m`` in ``psnr``,
``ssim`` (and ``lpips`` when its weights are present) and every no-reference
member, the same members again under ``nr`` with their direction and role,
``steps``, ``seed``, ``wall_time_s``, ``lq_from``, ``premise`` (the "+" twin at each pair's own level vs the
baseline, PSNR against the training GTs: does the baseline restore to the mean GT quality?), the label
diagnostics and the ``verdict``.
Spearman's rho is taken between the level and the metric's raw value: a
lower-is-better metric (LPIPS, PIQE, blur_effect) improves with the level when
its rho is *negative*.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Mapping

import torch

from iqprior.uneven_gt import spearman

from .data import GRADES

STRIP_LEVELS = (0, 3, 6, 9)
#: side of the centre crop of the held-out image shown in the figure
ZOOM = 128
LOWER_BETTER_FR = {"psnr": False, "ssim": False, "lpips": True}


def _r(v: float, nd: int = 4):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), nd)


def summarise(cfg, labels, pool, ev, ev_res: Mapping, loss_base, loss_plus, wall: float) -> dict:
    """The ``control.json`` dictionary (see the module docstring)."""
    from iqprior.scoring.specs import get_spec

    means = ev_res["means"]
    levels = list(range(GRADES))
    res: dict = {
        "labels": cfg.labels, "levels": levels, "steps": cfg.steps, "seed": cfg.seed, "lq_from": cfg.lq_from,
        "source": cfg.source, "source_params": _source_params(cfg),
        "regime": cfg.regime if isinstance(cfg.regime, str) else "custom",
        "regime_params": asdict(cfg.degradation),
        "premise": dict(ev_res.get("premise", {})),
        "grade_visibility": dict(ev_res.get("grade_visibility", {})),
        "label_members": list(labels.members), "held_out_members": list(ev_res["held_out"]),
        "label_rho_quality": _r(labels.rho_grade),
        "level_counts": torch.bincount(labels.level, minlength=GRADES).tolist(),
        "calibration": labels.calibration, "member_tracking": labels.tracking,
        "train_pairs": int(pool.gt.shape[0]),
        "eval_images": list(ev.names), "inject_at": "encoder",
        "final_loss": {"baseline": _r(sum(loss_base[-50:]) / len(loss_base[-50:]), 5),
                       "plus": _r(sum(loss_plus[-50:]) / len(loss_plus[-50:]), 5)},
        "unavailable": ev_res["unavailable"], "per_image_psnr": ev_res.get("per_image_psnr", {}),
    }
    for k in ev_res["fr"]:
        plus = [means[f"level{lv}"][k] for lv in levels]
        res[f"plus_{k}"] = [_r(v) for v in plus]
        res[f"baseline_{k}"] = _r(means["baseline"][k])
        res[f"lq_{k}"] = _r(means["lq"][k])
        res[f"spearman_level_{k}"] = _r(spearman(levels, plus))
    res["nr"] = {}
    for k in ev_res["nr"]:
        plus = [means[f"level{lv}"][k] for lv in levels]
        entry = {"plus": [_r(v) for v in plus], "baseline": _r(means["baseline"][k]), "lq": _r(means["lq"][k]),
                 "source": _r(means["source"][k]), "spearman_level": _r(spearman(levels, plus)),
                 "lower_better": get_spec(k).lower_better,
                 "role": "label" if k in labels.members else "held-out"}
        res["nr"][k] = entry
        for field in ("plus", "baseline", "lq", "spearman_level"):
            res[f"{field}_{k}"] = entry[field]
    res["verdict"] = verdict(res)
    res["wall_time_s"] = round(wall, 1)
    return res


def _source_params(cfg) -> dict:
    if cfg.source == "leaves":
        from .leaves import HELD_OUT_SEED, LeavesConfig

        return {**asdict(LeavesConfig()), "held_out_seed": HELD_OUT_SEED}
    from .data import HELD_OUT, bundled_data_dir

    return {"data": str(cfg.data or bundled_data_dir()), "held_out": list(HELD_OUT)}


def _better(a: float, b: float, lower: bool) -> bool:
    return a < b if lower else a > b


def verdict(res: Mapping) -> dict:
    """The thesis, checked (issue #25): rho(level, PSNR) >= 0.8, level 9 beats its unconditioned twin (PSNR, SSIM,
    LPIPS when present) and the LQ input by >= 1 dB PSNR (it restores), premise gain >= 0.5 dB; ``holds`` = all."""
    out = {}
    if res.get("plus_psnr"):
        out["rho_level_psnr_at_least_0.8"] = bool((res["spearman_level_psnr"] or -1) >= 0.8)
        out["level9_minus_baseline_psnr_db"] = _r(res["plus_psnr"][-1] - res["baseline_psnr"], 3)
        out["level9_minus_lq_psnr_db"] = _r(res["plus_psnr"][-1] - res["lq_psnr"], 3)
        out["level9_beats_lq_by_1db"] = bool(res["plus_psnr"][-1] - res["lq_psnr"] >= 1.0)
    if res.get("premise"):
        out["premise_gain_at_least_0.5db"] = bool(res["premise"]["gain_db"] >= 0.5)
    for k in ("psnr", "ssim", "lpips"):
        if res.get(f"plus_{k}"):
            out[f"level9_beats_baseline_{k}"] = _better(res[f"plus_{k}"][-1], res[f"baseline_{k}"],
                                                        LOWER_BETTER_FR[k])
    out["holds"] = all(out.get(k, True) for k in ("rho_level_psnr_at_least_0.8", "level9_beats_lq_by_1db",
                                                   "premise_gain_at_least_0.5db", "level9_beats_baseline_psnr",
                                                   "level9_beats_baseline_ssim", "level9_beats_baseline_lpips"))
    for k, e in res.get("nr", {}).items():
        out[f"level9_beats_baseline_{k} ({e['role']})"] = _better(e["plus"][-1], e["baseline"], e["lower_better"])
    return out


def _f(v, nd=3) -> str:
    return "n/a" if v is None else f"{v:.{nd}f}"


def markdown(res: Mapping) -> str:
    """``control.md``: the per-level table, Spearman's rho per metric, the label diagnostics."""
    fr = [k for k in ("psnr", "ssim", "lpips") if res.get(f"plus_{k}")]
    nr = list(res.get("nr", {}))
    arrow = {**{k: "↓" if LOWER_BETTER_FR[k] else "↑" for k in fr},
             **{k: "↓" if res["nr"][k]["lower_better"] else "↑" for k in nr}}
    title = {**{k: k.upper() for k in fr}, **{k: f"{k} ({res['nr'][k]['role']})" for k in nr}}
    cols = fr + nr
    lq_from = {"gt": "the imperfect GT", "pristine": "the pristine crop"}.get(res["lq_from"], res["lq_from"])
    lines = [f"# Control experiment: {res.get('source', '?')} sources, labels = {res['labels']}, regime "
             f"{res.get('regime', '?')}, LQ degraded from "
             f"{lq_from}, {res['steps']} steps, seed {res['seed']}", "",
             "| output | " + " | ".join(f"{title[c]} {arrow[c]}" for c in cols) + " |",
             "|---|" + "---|" * len(cols)]

    def val(c, row):
        if c in fr:
            v = res[f"plus_{c}"][row] if isinstance(row, int) else res.get(f"{row}_{c}")
        else:
            v = res["nr"][c]["plus"][row] if isinstance(row, int) else res["nr"][c].get(row)
        return _f(v, 2 if c == "psnr" else 4)

    for lv in res["levels"]:
        lines.append(f"| \"+\" level {lv} | " + " | ".join(val(c, lv) for c in cols) + " |")
    for row, name in (("baseline", "baseline (no condition)"), ("lq", "LQ input"), ("source", "pristine source")):
        lines.append(f"| {name} | " + " | ".join(val(c, row) if not (row == "source" and c in fr) else "—"
                                                   for c in cols) + " |")
    lines.append("| **Spearman rho (level, metric)** | " + " | ".join(
        _f(res[f"spearman_level_{c}"]) if c in fr else _f(res["nr"][c]["spearman_level"]) for c in cols) + " |")
    lines += ["", f"Labels: **{res['labels']}**"
              + (f" (members {', '.join(res['label_members'])}, calibrated on the {res['train_pairs']} training "
                 f"GTs; Spearman rho between GT quality and label score {_f(res['label_rho_quality'])})"
                 if res["labels"] == "scorer" else " (level = 9 - imperfection grade)")
              + f"; level counts {res['level_counts']}.", "",
              "How well each offline member tracks the GT imperfection (Spearman rho between quality and the "
              "member's score, + = tracks): " + ", ".join(f"{k} {_f(v)}" for k, v in res["member_tracking"].items())
              + ".", "", _premise_line(res), "", _visibility_line(res), "",
              "Verdict: " + "; ".join(f"{k}: {v}" for k, v in res["verdict"].items()) + ".", "",
              f"Evaluated on {len(res['eval_images'])} held-out LQ images ({', '.join(res['eval_images'])}); "
              f"wall time {res['wall_time_s']} s."]
    if res["unavailable"]:
        lines += ["", "Unavailable: " + "; ".join(f"{k} ({v})" for k, v in res["unavailable"].items())]
    return "\n".join(lines) + "\n"


def _premise_line(res: Mapping) -> str:
    p = res.get("premise") or {}
    if not p:
        return "Premise: not measured."
    return (f"Premise (does the baseline restore to the mean GT quality?): on {p['pairs']} training pairs, PSNR to "
            f"their own GT is {_f(p['baseline_psnr_to_gt'], 2)} dB for the baseline and "
            f"{_f(p['plus_psnr_to_gt'], 2)} dB for \"+\" at each pair's level, a gain of {_f(p['gain_db'], 3)} dB. "
            "About 0 means the LQ reveals the GT's grade, so the baseline has no ceiling for the level to lift.")


def _visibility_line(res: Mapping) -> str:
    v = res.get("grade_visibility") or {}
    if not v:
        return "Grade visibility: not measured."
    extra = ""
    if "lq_cnn" in v:
        extra += f"; a small CNN: from the GT {_f(v.get('gt_cnn'))}, from the LQ {_f(v.get('lq_cnn'))}"
    if "lq_scorer" in v:
        extra += f"; the labelling members on the LQ {_f(v.get('lq_scorer'))}"
    return (f"Grade visibility (Spearman rho between the GT grade and a reader's prediction on held-out "
            f"training pairs): a linear probe from the GT {_f(v.get('gt'))}, from the LQ input {_f(v.get('lq'))}"
            f"{extra}. Near 0 from the LQ: the input hides which quality its GT had, the paper's premise.")


def figure(res: Mapping, strip: Mapping[str, torch.Tensor], path: Path) -> Path:
    """``control.png``: each metric against the level (baseline dashed) over a strip of one held-out image."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from iqprior.io import atomic_path

    fr = [k for k in ("psnr", "ssim", "lpips") if res.get(f"plus_{k}")]
    nr = list(res.get("nr", {}))
    panels = fr + nr
    cells = ["lq", *(f"level{lv}" for lv in STRIP_LEVELS), "baseline", "source"]
    ncol = max(len(panels), len(cells))
    fig = plt.figure(figsize=(2.3 * ncol, 5.2), dpi=110)
    gs = fig.add_gridspec(2, ncol, height_ratios=[1.0, 1.0], hspace=0.45, wspace=0.45)
    for i, k in enumerate(panels):
        ax = fig.add_subplot(gs[0, i])
        if k in fr:
            plus, base, lq, lower = res[f"plus_{k}"], res[f"baseline_{k}"], res[f"lq_{k}"], LOWER_BETTER_FR[k]
            rho, name = res[f"spearman_level_{k}"], k.upper()
        else:
            e = res["nr"][k]
            plus, base, lq, lower, rho, name = e["plus"], e["baseline"], e["lq"], e["lower_better"], \
                e["spearman_level"], f"{k} ({e['role']})"
        ax.plot(res["levels"], plus, "o-", color="#4C72B0", ms=3, label='"+"')
        ax.axhline(base, color="#C44E52", ls="--", lw=1.2, label="baseline")
        ax.axhline(lq, color="0.6", ls=":", lw=1.0, label="LQ")
        ax.set_title(f"{name} {'↓' if lower else '↑'}\nrho={_f(rho, 2)}", fontsize=8)
        ax.set_xlabel("condition level", fontsize=7)
        ax.tick_params(labelsize=6)
        if i == 0:
            ax.legend(fontsize=6, frameon=False)
    names = {"lq": "LQ input", "baseline": "baseline", "source": "pristine source",
             **{f"level{lv}": f'"+" level {lv}' for lv in STRIP_LEVELS}}
    for j, c in enumerate(cells):
        ax = fig.add_subplot(gs[1, j])
        img = strip[c].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
        h, w = img.shape[:2]
        if min(h, w) > ZOOM:       # a centre crop: the difference between levels is at the edges' sharpness
            y, x = (h - ZOOM) // 2, (w - ZOOM) // 2
            img = img[y:y + ZOOM, x:x + ZOOM]
        ax.imshow(img, interpolation="nearest")
        ax.set_title(names[c], fontsize=8)
        ax.axis("off")
    fig.suptitle(f"{res.get('source', '?')} sources, labels={res['labels']}, regime {res.get('regime', '?')}, "
                 f"LQ from {res['lq_from']}, {res['steps']} steps, seed {res['seed']}: "
                 f"held-out {res['eval_images'][0].split('#')[0]} (centre {ZOOM} px)", fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)
    return path


def write_outputs(res: Mapping, strip: Mapping[str, torch.Tensor], out: Path) -> dict[str, Path]:
    """Write the three files under ``out``; returns their paths."""
    from iqprior.io import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "control.json", "markdown": out / "control.md", "figure": out / "control.png"}
    atomic_write_text(files["json"], json.dumps(res, indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(files["markdown"], markdown(res))
    figure(res, strip, files["figure"])
    return files
