"""``iqprior bench control``: the control experiment's outputs, reproducibility and parts.

The fast tests run the whole command with a few steps on a small pool (the
numbers mean nothing there); the claim itself (level tracks PSNR, level 9 beats
the baseline) is checked by the slow tests on the default run.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from iqprior.bench.control import ControlConfig, build_twins, make_labels, premise
from iqprior.bench.control.data import GRADES, imperfect, load_sources, make_pool
from iqprior.bench.control.report import spearman
from iqprior.cli import main

TINY = ["--steps", "3", "--pool", "24", "--eval-draws", "1", "--no-progress"]
FIELDS = ("labels", "levels", "plus_psnr", "baseline_psnr", "spearman_level_psnr", "plus_ssim", "baseline_ssim",
          "spearman_level_ssim", "nr", "steps", "seed", "wall_time_s", "lq_from", "premise")


def _run(out, *extra) -> dict:
    assert main(["bench", "control", "--out", str(out), *TINY, *extra]) == 0
    return json.loads((out / "control.json").read_text())


def _numbers(res: dict) -> dict:
    return {k: v for k, v in res.items() if k not in ("wall_time_s", "files", "config")}


def test_control_outputs_structure_and_reproducible(tmp_path):
    a = _run(tmp_path / "a", "--seed", "3")
    for f in FIELDS:
        assert f in a, f
    assert a["labels"] == "scorer" and a["levels"] == list(range(10)) and a["steps"] == 3 and a["seed"] == 3
    for k in ("psnr", "ssim"):
        assert len(a[f"plus_{k}"]) == 10 and all(isinstance(v, float) for v in a[f"plus_{k}"])
        assert isinstance(a[f"baseline_{k}"], float)
        rho = a[f"spearman_level_{k}"]
        assert rho is None or -1.0 <= rho <= 1.0
    assert a["nr"]["blur_effect"]["role"] == a["nr"]["blockiness"]["role"] == "label" and a["nr"]["piqe"]["role"] == "held-out"
    assert len(a["plus_piqe"]) == 10 and "spearman_level_piqe" in a
    assert sum(a["level_counts"]) == 24 and a["label_members"] == ["blur_effect", "blockiness"]
    assert set(a["member_tracking"]) >= {"blur_effect", "blockiness", "piqe", "entropy", "uiqm", "uciqe"}
    assert a["lq_from"] == "gt" and a["premise"]["pairs"] == 24
    assert a["premise"]["gain_db"] == pytest.approx(a["premise"]["plus_psnr_to_gt"] - a["premise"]["baseline_psnr_to_gt"],
                                                    abs=2e-4)
    assert (tmp_path / "a" / "control.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "a" / "control.md").read_text()
    assert '"+" level 9' in md and "baseline" in md and "Spearman" in md and "Premise" in md
    b = _run(tmp_path / "b", "--seed", "3")
    assert _numbers(a) == _numbers(b)                    # same seed: the same numbers, to the last digit


def test_control_oracle_labels_are_the_grades():
    train, _ = load_sources()
    pool = make_pool(train, 20, 32, np.random.default_rng(0))
    lab = make_labels(pool, "oracle", tracking=False)
    assert torch.equal(lab.level, GRADES - 1 - pool.grade) and lab.rho_grade == 1.0
    assert pool.gt.shape[-1] == 32 and pool.item.shape[-1] == 64 and pool.item.dtype == torch.uint8
    # every GT is a crop of its (labelled) item, to 8-bit rounding
    hit = [any(torch.allclose(pool.items(i, i + 1)[0, :, y:y + 32, x:x + 32], pool.gt[i], atol=0.51 / 255)
               for y in range(33) for x in range(33)) for i in range(3)]
    assert all(hit)
    scored = make_labels(pool, "scorer", tracking=False)
    assert scored.level.min() >= 0 and scored.level.max() <= 9 and scored.members == ("blur_effect", "blockiness")
    assert scored.level.max() == 9      # calibrated on these GTs: the sharpest reaches the top level
    with pytest.raises(ValueError, match="labels"):
        ControlConfig(labels="grades")


def test_control_twins_start_equal_and_plus_adds_only_the_embedding():
    base, plus = build_twins(ControlConfig(seed=1))
    other, _ = build_twins(ControlConfig(seed=2))
    assert not torch.equal(base.head[0].weight, other.head[0].weight)   # the seed sets the initialisation
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        y = base(x)
        for lv in (0, 9):
            assert torch.equal(plus(x, score=lv), y)      # zero-initialised embedding
    extra = set(plus.state_dict()) - set(base.state_dict())
    assert extra == {"score_embedding.weight"}


def test_lq_from_pristine_hides_the_grade_and_keeps_the_gts():
    """``--lq-from pristine``: the same GTs and grades; a grade-0 pair's LQ is unchanged, the others' LQ is
    degraded from the pristine crop (so it carries no trace of the GT's imperfection)."""
    train, _ = load_sources()
    a = make_pool(train, 16, 32, np.random.default_rng(4))
    b = make_pool(train, 16, 32, np.random.default_rng(4), lq_from="pristine")
    for k in ("gt", "grade", "pristine", "item"):
        assert torch.equal(getattr(a, k), getattr(b, k)), k
    zero, other = a.grade == 0, a.grade > 0
    assert zero.any() and other.any()
    assert torch.equal(a.lq[zero], b.lq[zero]) and not torch.equal(a.lq[other], b.lq[other])
    with pytest.raises(ValueError, match="lq_from"):
        make_pool(train, 2, 32, np.random.default_rng(0), lq_from="source")
    with pytest.raises(ValueError, match="lq_from"):
        ControlConfig(lq_from="clean")


def test_premise_is_zero_for_equal_twins_and_sees_a_level_effect():
    """``premise``: the "+" twin at each pair's level vs the baseline, PSNR against the pair's own GT."""
    train, _ = load_sources()
    pool = make_pool(train, 12, 32, np.random.default_rng(1))
    levels = make_labels(pool, "oracle", tracking=False).level
    base, plus = build_twins(ControlConfig(seed=0))
    p = premise(base, plus, pool, levels, chunk=5)
    assert p["pairs"] == 12 and p["gain_db"] == 0.0          # zero embedding: the twins agree
    with torch.no_grad():                                      # a level-dependent shift changes the "+" output only
        plus.score_embedding.weight.copy_(torch.linspace(-0.5, 0.5, GRADES)[:, None].expand_as(plus.score_embedding.weight))
    q = premise(base, plus, pool, levels)
    assert q["baseline_psnr_to_gt"] == p["baseline_psnr_to_gt"] and q["gain_db"] != 0.0


def test_imperfection_grades_are_ordered():
    train, _ = load_sources()
    rng = np.random.default_rng(0)
    img = train[0].image[:64, :64]
    assert np.array_equal(imperfect(img, 0, rng), img)
    err = [float(np.abs(imperfect(img, k, rng) - img).mean()) for k in (1, 4, 9)]
    assert err[0] < err[1] < err[2]


def test_spearman():
    assert spearman([0, 1, 2, 3], [1, 5, 7, 9]) == pytest.approx(1.0)
    assert spearman([0, 1, 2, 3], [9, 5, 2, 1]) == pytest.approx(-1.0)
    assert spearman([0, 1, 2, 3], [1, 1, 2, 2]) == pytest.approx(0.894427, abs=1e-5)   # ties: mean ranks
    assert np.isnan(spearman([0, 1, 2], [4, 4, 4]))


def _default_run(tmp_path, labels: str, *extra: str) -> dict:
    assert main(["bench", "control", "--out", str(tmp_path), "--labels", labels, "--no-progress", *extra]) == 0
    return json.loads((tmp_path / "control.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("labels", ["oracle", "scorer"])
def test_control_claim_holds_where_the_lq_hides_the_grade(tmp_path, labels):
    """``--lq-from pristine``: the paper's premise made true (the LQ carries no trace of the GT's grade).

    Measured (seed 0, 3000 steps): premise gain 2.50 dB (oracle) / 2.17 dB (scorer); rho(level, PSNR)
    0.988 / 0.818; level 9 beats the baseline by +1.45 / +1.33 dB in PSNR and in SSIM.
    """
    res = _default_run(tmp_path, labels, "--lq-from", "pristine")
    assert res["lq_from"] == "pristine" and res["premise"]["gain_db"] > 1.0
    assert res["spearman_level_psnr"] >= 0.8
    assert res["plus_psnr"][-1] > res["baseline_psnr"] + 0.5 and res["plus_ssim"][-1] > res["baseline_ssim"]


@pytest.mark.slow
def test_control_default_run_premise_is_weak(tmp_path):
    """With the LQ degraded from the imperfect GT (Eq. 16, the default), the baseline sees the grade through
    the LQ: the "+" twin told each GT's level fits the training GTs only slightly better (measured 0.15 dB,
    against 2.50 dB when the LQ hides the grade). This is why level 9 barely beats the baseline by default."""
    res = _default_run(tmp_path, "oracle")
    assert 0.0 <= res["premise"]["gain_db"] < 0.5


@pytest.mark.slow
@pytest.mark.xfail(reason="measured (seed 0, 3000 steps): rho(level, PSNR) = rho(level, SSIM) = 1.0 and level 9 beats "
                          "the baseline in PSNR (+0.033 dB) but not in SSIM (0.7672 vs 0.7690): the LQ reveals the GT's "
                          "grade, so the baseline has almost no ceiling (premise gain 0.15 dB; 2.50 dB with "
                          "--lq-from pristine, where the claim holds); see benchmarks/README.md", strict=True,
                   raises=AssertionError)
def test_control_default_run_oracle_labels_show_the_claim(tmp_path):
    """The issue's expectation with the known grades: rho(level, PSNR) >= 0.8, level 9 beats the baseline."""
    res = _default_run(tmp_path, "oracle")
    assert res["spearman_level_psnr"] >= 0.8 and res["spearman_level_ssim"] >= 0.8
    assert res["plus_psnr"][-1] > res["baseline_psnr"] and res["plus_ssim"][-1] > res["baseline_ssim"]
    assert res["plus_psnr"][-1] > res["plus_psnr"][0]


@pytest.mark.slow
@pytest.mark.xfail(reason="measured (seed 0, 3000 steps): the labels track the GT grade (rho 0.96) but rho(level, "
                          "PSNR) is 0.76 and level 9 is 0.14 dB below the baseline: levels 8-9 hold only grade 0-1 "
                          "items, chosen among them by texture (blur_effect reads content), so the top levels ask for "
                          "over-sharpening, and the LQ reveals the GT's grade (premise gain 0.19 dB); with --lq-from "
                          "pristine rho is 0.82 and level 9 is +1.33 dB; see benchmarks/README.md", strict=True,
                   raises=AssertionError)
def test_control_default_run_scorer_labels_show_the_claim(tmp_path):
    res = _default_run(tmp_path, "scorer")
    assert res["spearman_level_psnr"] >= 0.8
    assert res["plus_psnr"][-1] > res["baseline_psnr"]
