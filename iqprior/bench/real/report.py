"""Outputs of ``iqprior bench real``: ``real.json``, ``real.md`` and ``real.png``.

``real.json`` fields (names fixed by issue #31): ``model`` (the released file), ``levels`` (0..9),
``members_label`` / ``members_heldout`` (no-reference members that labelled the training GTs / that did
not), ``plus`` (per metric, one value per level), ``baseline`` (the unconditioned twin), ``released``
(the released model untouched), ``lq`` (the LQ input) — each a dictionary metric -> mean over the held-out
images, for ``psnr``, ``ssim`` (``lpips`` when its weights are present), every member and ``ensemble``
(the labelling members' mean score with the training GTs' min-max calibration, unclipped, higher is better)
—, ``spearman_level_quality`` (Spearman's rho between the level and the ensemble score of the "+" output)
and ``verdict`` (the checks of issue #31). More context follows them (``source``, ``spearman_level`` per
metric, ``overoptimisation``, ``photos``, ``labels``, ``model_info``, ``config``, ``wall_time_s``).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping

import torch

from ..control.report import LOWER_BETTER_FR, spearman

ENSEMBLE = "ensemble"
ROWS = ("baseline", "released", "lq")
#: the levels shown in the figure next to the twin, the released model, the LQ and the source
STRIP_LEVELS = (0, 3, 6, 9)
#: side of the crop of each held-out photo in the figure (GT pixels)
CROP = 96
#: the fidelity check: level 9's PSNR may be at most this far below the twin's
PSNR_MARGIN_DB = 0.5
RHO_MIN = 0.8


def _r(v, nd: int = 4):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), nd)


def ensemble_of(means: Mapping[str, float], calibration: Mapping[str, Mapping]) -> float:
    """The labelling ensemble of one row's mean raw scores: ``mean_i s_i`` with the training min-max (unclipped,
    so the mean over images equals the ensemble of the means: the normalisation is linear)."""
    from iqprior.scoring.calibration import Calibration, MemberRange

    cal = Calibration({n: MemberRange(c["min"], c["max"], c["lower_better"]) for n, c in calibration.items()})
    return sum(float(cal.normalise(n, means[n])) for n in calibration) / len(calibration)


def lower_better(metric: str) -> bool:
    if metric == ENSEMBLE:
        return False
    if metric in LOWER_BETTER_FR:
        return LOWER_BETTER_FR[metric]
    from iqprior.scoring.specs import get_spec

    return get_spec(metric).lower_better


def better(a: float, b: float, metric: str) -> bool:
    return a < b if lower_better(metric) else a > b


def summarise(cfg, info: Mapping, labels, ev_res: Mapping, photos: Mapping, losses: Mapping, wall: float) -> dict:
    """The ``real.json`` dictionary (see the module docstring)."""
    means = ev_res["means"]
    levels = list(range(10))
    metrics = [*ev_res["fr"], *ev_res["nr"]]
    for row in means.values():
        if all(m in row for m in labels.calibration):
            row[ENSEMBLE] = ensemble_of(row, labels.calibration)
    metrics.append(ENSEMBLE)
    res: dict = {"model": str(cfg.checkpoint), "levels": levels, "members_label": list(labels.members),
                 "members_heldout": [m for m in ev_res["nr"] if m in cfg.heldout_members]}
    res["plus"] = {m: [_r(means[f"level{lv}"][m]) for lv in levels] for m in metrics}
    for row in ROWS:
        res[row] = {m: _r(means[row].get(m)) for m in metrics}
    res["spearman_level_quality"] = _r(spearman(levels, res["plus"][ENSEMBLE]))
    res["verdict"] = verdict(res)
    res["source"] = {m: _r(means["source"].get(m)) for m in metrics if m in means["source"]}
    res["spearman_level"] = {m: _r(spearman(levels, res["plus"][m])) for m in metrics}
    res["overoptimisation"] = overoptimisation(res)
    res["photos"] = dict(photos)
    res["eval_images"] = list(ev_res.get("names", []))
    res["labels"] = {"level_counts": torch.bincount(labels.level, minlength=10).tolist(), "rule": labels.rule,
                     "floor_10s_counts": labels.floor_counts,
                     "rho_quality": _r(labels.rho_grade), "calibration": labels.calibration}
    res["model_info"] = dict(info)
    res["final_loss"] = {k: _r(sum(v[-50:]) / len(v[-50:]), 5) for k, v in losses.items()}
    res["unavailable"] = dict(ev_res.get("unavailable", {}))
    res["wall_time_s"] = round(wall, 1)
    return res


def verdict(res: Mapping) -> dict:
    """Issue #31's checks on the held-out photos; ``holds`` = all of them (the figure is for a person to judge)."""
    plus, base, rel = res["plus"], res["baseline"], res["released"]
    out = {"level9_beats_twin_ensemble": better(plus[ENSEMBLE][-1], base[ENSEMBLE], ENSEMBLE)}
    for m in res["members_heldout"]:
        out[f"level9_beats_twin_{m}_heldout"] = better(plus[m][-1], base[m], m)
    out["spearman_level_quality_at_least_0.8"] = bool((res["spearman_level_quality"] or -1) >= RHO_MIN)
    if plus.get("psnr"):
        out["level9_minus_twin_psnr_db"] = _r(plus["psnr"][-1] - base["psnr"], 3)
        out["level9_psnr_within_0.5db_of_twin"] = bool(plus["psnr"][-1] >= base["psnr"] - PSNR_MARGIN_DB)
    out["level9_beats_released_ensemble"] = better(plus[ENSEMBLE][-1], rel[ENSEMBLE], ENSEMBLE)
    out["holds"] = all(v for k, v in out.items() if isinstance(v, bool))
    return out


def overoptimisation(res: Mapping) -> dict:
    """Members that move apart: at level 9 vs the twin, and along the levels (Spearman's sign, oriented so that +
    is better). ``flag`` when one no-reference member improves while another worsens."""
    members = [*res["members_label"], *res["members_heldout"]]
    vs_twin, along = {}, {}
    for m in members:
        vs_twin[m] = "better" if better(res["plus"][m][-1], res["baseline"][m], m) else "worse"
        rho = res["spearman_level"][m]
        along[m] = None if rho is None else _r(-rho if lower_better(m) else rho, 3)
    up = [m for m in members if vs_twin[m] == "better"]
    down = [m for m in members if vs_twin[m] == "worse"]
    return {"level9_vs_twin": vs_twin, "rho_level_oriented": along, "flag": bool(up and down),
            "rising": up, "falling": down}


def _f(v, nd: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{nd}f}"


def markdown(res: Mapping) -> str:
    """``real.md``: the per-level table against the twin, the released model and the LQ; the verdict."""
    metrics = list(res["plus"])
    role = dict.fromkeys(res["members_label"], " (label)") | dict.fromkeys(res["members_heldout"], " (held-out)")
    head = [f"{m}{role.get(m, '')} {'↓' if lower_better(m) else '↑'}" for m in metrics]
    nd = {m: 2 if m == "psnr" else 4 for m in metrics}
    info = res["model_info"]
    lines = [f"# {res['model']} made \"+\" on real photos (seed {res['config']['seed']}, "
             f"{res['config']['steps']} steps per model)", "",
             f"{info['architecture']} x{info['scale']}, {info['parameters']} parameters; level embedding at "
             f"`{info['inject_at']}` {info['embedding_shape']}. Labels: {', '.join(res['members_label'])} "
             f"(min-max over the {sum(res['labels']['level_counts'])} training GTs; Spearman rho between GT quality "
             f"and label {_f(res['labels']['rho_quality'])}; levels by {res['labels']['rule']}, counts "
             f"{res['labels']['level_counts']}; floor(10 s) would give {res['labels']['floor_10s_counts']}). "
             f"Held-out member(s): {', '.join(res['members_heldout'])}.", "",
             "| output | " + " | ".join(head) + " |", "|---|" + "---|" * len(metrics)]
    for lv in res["levels"]:
        lines.append(f"| \"+\" level {lv} | " + " | ".join(_f(res["plus"][m][lv], nd[m]) for m in metrics) + " |")
    names = {"baseline": "twin (no level)", "released": "released, untouched", "lq": "LQ input"}
    for row in ROWS:
        lines.append(f"| {names[row]} | " + " | ".join(_f(res[row][m], nd[m]) for m in metrics) + " |")
    lines.append("| pristine source | " + " | ".join(_f(res["source"].get(m), nd[m]) for m in metrics) + " |")
    lines.append("| **Spearman rho (level, metric)** | "
                 + " | ".join(_f(res["spearman_level"][m]) for m in metrics) + " |")
    o = res["overoptimisation"]
    lines += ["", f"Spearman rho (level, ensemble): **{_f(res['spearman_level_quality'])}**.", "",
              "Verdict: " + "; ".join(f"{k}: {v}" for k, v in res["verdict"].items()) + ".", "",
              "Over-optimisation (level 9 vs the twin, per member): "
              + ", ".join(f"{k} {v}" for k, v in o["level9_vs_twin"].items())
              + (" — **members disagree**" if o["flag"] else " — no member falls") + ".", "",
              f"Training photos: {', '.join(res['photos']['train'])}. Held-out photos: "
              f"{', '.join(res['photos']['heldout'])} ({len(res['eval_images'])} LQ draws). "
              f"Wall time {res['wall_time_s']} s (CPU time {res.get('cpu_time_s', 'n/a')} s, "
              f"{res['config'].get('threads_used', '?')} thread(s))."]
    if res["unavailable"]:
        lines += ["", "Unavailable: " + "; ".join(f"{k} ({v})" for k, v in res["unavailable"].items())]
    return "\n".join(lines) + "\n"


def _crop(img: torch.Tensor, side: int):
    h, w = img.shape[-2:]
    y, x = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return img[:, y:y + side, x:x + side].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def figure(res: Mapping, strips: Mapping[str, Mapping[str, torch.Tensor]], path: Path) -> Path:
    """``real.png``: per held-out photo (a row), a centre crop of the LQ, the released model, the twin, the "+" at
    levels 0/3/6/9 and the pristine source; above them, the ensemble and PSNR against the level."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from iqprior.io import atomic_path

    cells = ["lq", "released", "baseline", *(f"level{lv}" for lv in STRIP_LEVELS), "source"]
    titles = {"lq": "LQ input", "released": "released", "baseline": "twin (no level)", "source": "source",
              **{f"level{lv}": f'"+" level {lv}' for lv in STRIP_LEVELS}}
    rows = list(strips)
    fig = plt.figure(figsize=(1.9 * len(cells), 2.3 + 1.95 * len(rows)), dpi=110)
    gs = fig.add_gridspec(1 + len(rows), len(cells), height_ratios=[1.2] + [1.0] * len(rows), hspace=0.3,
                          wspace=0.05)
    for i, m in enumerate(m for m in (ENSEMBLE, "psnr", *res["members_heldout"]) if res["plus"].get(m)):
        ax = fig.add_subplot(gs[0, 2 * i:2 * i + 2])
        ax.plot(res["levels"], res["plus"][m], "o-", ms=3, color="#4C72B0", label='"+"')
        for row, style in (("baseline", ("#C44E52", "--")), ("released", ("#55A868", "-.")), ("lq", ("0.6", ":"))):
            if res[row].get(m) is not None:
                ax.axhline(res[row][m], color=style[0], ls=style[1], lw=1.1, label=row)
        ax.set_title(f"{m} {'↓' if lower_better(m) else '↑'}, rho={_f(res['spearman_level'][m], 2)}", fontsize=8)
        ax.tick_params(labelsize=6)
        if i == 0:
            ax.legend(fontsize=6, frameon=False)
    for r, name in enumerate(rows):
        for j, c in enumerate(cells):
            ax = fig.add_subplot(gs[1 + r, j])
            ax.imshow(_crop(strips[name][c], CROP), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=8)
            if j == 0:
                ax.set_ylabel(name.split(":")[-1], fontsize=7)
    fig.suptitle(f"{res['model']} \"+\" fine-tuned on real photos (seed {res['config']['seed']}): held-out "
                 f"photos, centre {CROP} px", fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)
    return path


def write_outputs(res: Mapping, strips, out: Path) -> dict[str, Path]:
    """Write ``real.json``, ``real.md``, ``real.png`` under ``out``; returns their paths."""
    from iqprior.io import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "real.json", "markdown": out / "real.md", "figure": out / "real.png"}
    atomic_write_text(files["json"], json.dumps(res, indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(files["markdown"], markdown(res))
    figure(res, strips, files["figure"])
    return files
