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
FIELDS = ("labels", "levels", "plus_psnr", "baseline_psnr", "lq_psnr", "spearman_level_psnr", "plus_ssim",
          "baseline_ssim", "spearman_level_ssim", "nr", "steps", "seed", "wall_time_s", "lq_from", "premise", "verdict",
          "regime", "regime_params", "grade_visibility", "source", "source_params")


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
    assert a["nr"]["blur_effect"]["role"] == "label"           # the "dominant" regime's GTs are blurred, not JPEG'd
    assert a["nr"]["blockiness"]["role"] == a["nr"]["piqe"]["role"] == "held-out"
    assert len(a["plus_piqe"]) == 10 and "spearman_level_piqe" in a
    assert sum(a["level_counts"]) == 24 and a["label_members"] == ["blur_effect"]
    assert set(a["member_tracking"]) >= {"blur_effect", "blockiness", "piqe", "entropy", "uiqm", "uciqe"}
    assert a["lq_from"] == "gt" and a["premise"]["pairs"] == 24 and a["regime"] == "dominant"
    assert set(a["grade_visibility"]) == {"gt", "lq", "gt_cnn", "lq_cnn", "lq_scorer"}
    assert a["source"] == "leaves" and a["source_params"]["held_out"] == 3
    assert a["eval_images"][0].startswith("leaves/held")
    v = a["verdict"]
    assert v["holds"] == (v["rho_level_psnr_at_least_0.8"] and v["level9_beats_lq_by_1db"]
                          and v["premise_gain_at_least_0.5db"] and v["level9_beats_baseline_psnr"]
                          and v["level9_beats_baseline_ssim"] and v.get("level9_beats_baseline_lpips", True))
    assert v["level9_minus_lq_psnr_db"] == pytest.approx(a["plus_psnr"][-1] - a["lq_psnr"], abs=2e-3)
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
    one = make_labels(pool, "scorer", members=("blur_effect",), tracking=False)
    assert one.level.max() == 9 and one.level.min() == 0     # one member calibrated on these GTs spans the levels
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
    a = make_pool(train, 40, 32, np.random.default_rng(4))
    b = make_pool(train, 40, 32, np.random.default_rng(4), lq_from="pristine")
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


def test_grade_visibility_probe_reads_a_visible_grade_and_not_noise():
    """The linear probe reads the grade off GTs blurred by it, and reads nothing off images unrelated to it."""
    from iqprior.bench.control.data import REGIMES
    from iqprior.bench.control.visibility import probe

    train, _ = load_sources()
    pool = make_pool(train, 160, 32, np.random.default_rng(0), regime=REGIMES["visible"])
    assert probe(pool.gt, pool.grade) > 0.5                     # GT blur up to 5 px: plainly visible
    shuffled = pool.grade[torch.randperm(len(pool.grade), generator=torch.Generator().manual_seed(0))]
    assert abs(probe(pool.gt, shuffled)) < 0.3                  # labels unrelated to the images: nothing to read


def test_regimes_and_config():
    from iqprior.bench.control.data import REGIMES, Regime

    assert ControlConfig().degradation == REGIMES["dominant"]
    assert ControlConfig(regime="visible").degradation == Regime()
    custom = Regime(gt_blur=1.0)
    assert ControlConfig(regime=custom).degradation is custom
    with pytest.raises(ValueError, match="regime"):
        ControlConfig(regime="paper")
    h, v = REGIMES["dominant"], REGIMES["visible"]
    assert h.gt_blur < v.gt_blur and h.lq_blur[1] > v.lq_blur[1]   # the degradation dominates in "dominant"
    assert ControlConfig().source == "leaves" and ControlConfig(source="photos").source == "photos"
    with pytest.raises(ValueError, match="source"):
        ControlConfig(source="ffhq")


def test_dead_leaves_cover_the_canvas_and_follow_their_radii():
    from iqprior.bench.control.leaves import dead_leaves

    a = dead_leaves(64, np.random.default_rng(5))
    assert a.shape == (64, 64, 3) and a.dtype == np.float32
    assert np.array_equal(a, dead_leaves(64, np.random.default_rng(5)))          # the generator decides everything
    assert not np.array_equal(a, dead_leaves(64, np.random.default_rng(6)))
    # every pixel is covered: colours are drawn in [0.05, 0.95], an unpainted pixel would be 0
    assert a.min() >= 0.05 - 1e-6 and a.max() <= 0.95 + 1e-6
    # smaller discs make more edges: the mean gradient grows as the radii shrink
    grad = lambda im: float(np.abs(np.diff(im, axis=0)).mean() + np.abs(np.diff(im, axis=1)).mean())  # noqa: E731
    small = np.mean([grad(dead_leaves(64, np.random.default_rng(i), radius=(2, 8))) for i in range(3)])
    large = np.mean([grad(dead_leaves(64, np.random.default_rng(i), radius=(16, 64))) for i in range(3)])
    assert small > 2 * large
    with pytest.raises(ValueError, match="radius"):
        dead_leaves(16, np.random.default_rng(0), radius=(8, 4))


def test_leaves_sources_hold_out_the_same_images_for_every_seed():
    from iqprior.bench.control.leaves import LeavesConfig, leaves_sources

    cfg = LeavesConfig(size=48, train=2, held_out=2)
    t0, h0 = leaves_sources(0, cfg)
    t1, h1 = leaves_sources(1, cfg)
    assert [s.name for s in t0] == ["leaves/train00", "leaves/train01"] and len(h0) == 2
    assert all(np.array_equal(a.image, b.image) for a, b in zip(h0, h1))
    assert not np.array_equal(t0[0].image, t1[0].image)
    assert not any(np.array_equal(t.image, h.image) for t in t0 for h in h0)


def test_dominant_regime_on_leaves_hides_most_of_a_visible_grade():
    """The default data: the grade is plain on the GTs and mostly gone from the LQ (linear probe and small CNN)."""
    from iqprior.bench.control.leaves import LeavesConfig, leaves_sources
    from iqprior.bench.control.visibility import cnn_probe, probe

    train, _ = leaves_sources(0, LeavesConfig(size=128, train=6, held_out=1))
    pool = make_pool(train, 240, 64, np.random.default_rng(0))
    gt, lq = probe(pool.gt, pool.grade), probe(pool.lq, pool.grade)
    assert gt > 0.9 and lq < 0.6
    assert cnn_probe(pool.gt, pool.grade) > 0.5
    shuffled = pool.grade[torch.randperm(len(pool.grade), generator=torch.Generator().manual_seed(0))]
    assert abs(cnn_probe(pool.gt, shuffled)) < 0.3


def test_spearman():
    assert spearman([0, 1, 2, 3], [1, 5, 7, 9]) == pytest.approx(1.0)
    assert spearman([0, 1, 2, 3], [9, 5, 2, 1]) == pytest.approx(-1.0)
    assert spearman([0, 1, 2, 3], [1, 1, 2, 2]) == pytest.approx(0.894427, abs=1e-5)   # ties: mean ranks
    assert np.isnan(spearman([0, 1, 2], [4, 4, 4]))


def _default_run(tmp_path, labels: str, *extra: str) -> dict:
    assert main(["bench", "control", "--out", str(tmp_path), "--labels", labels, "--no-progress", *extra]) == 0
    return json.loads((tmp_path / "control.json").read_text())


# The slow runs below are the default command (dead-leaves sources, regime "dominant", 3000 steps, about 7 minutes
# each on 2 cores) and its ablations; the numbers quoted are docs/experiments/control.md's (seed 0).


@pytest.mark.slow
@pytest.mark.parametrize("labels", ["scorer", "oracle"])
def test_control_default_run_shows_the_claim(tmp_path, labels):
    """Issue #25's "Done when", no flags: level 9 beats its unconditioned twin (PSNR, SSIM) and the LQ input by
    >= 1 dB, Spearman(level, PSNR) >= 0.8, premise gain >= 0.5 dB; the degradation hides most of the grade."""
    res = _default_run(tmp_path, labels)
    assert res["source"] == "leaves" and res["regime"] == "dominant" and res["lq_from"] == "gt"
    assert res["premise"]["gain_db"] >= 0.5
    assert res["plus_psnr"][-1] > res["baseline_psnr"] and res["plus_ssim"][-1] > res["baseline_ssim"]
    assert res["plus_psnr"][-1] >= res["lq_psnr"] + 1.0 and res["spearman_level_psnr"] >= 0.8
    assert res["verdict"]["holds"]
    assert res["grade_visibility"]["lq"] < res["grade_visibility"]["gt"]


@pytest.mark.slow
def test_control_claim_holds_where_the_lq_hides_the_grade(tmp_path):
    """``--lq-from pristine``: the paper's premise made true (the LQ carries no trace of the GT's grade)."""
    res = _default_run(tmp_path, "oracle", "--lq-from", "pristine")
    assert res["lq_from"] == "pristine" and res["premise"]["gain_db"] >= 0.5
    assert res["verdict"]["holds"]


@pytest.mark.slow
def test_control_photographs_premise_is_weak(tmp_path):
    """``--source photos --regime photo``: on the five bundled photographs the restorer restores and the level
    steers it, but the premise gain stays under 0.5 dB (0.32 dB at seed 0): a photograph's detail beyond the LQ
    is not predictable by this restorer, so the GT's softness costs the baseline little."""
    res = _default_run(tmp_path, "oracle", "--source", "photos", "--regime", "photo")
    assert res["plus_psnr"][-1] >= res["lq_psnr"] + 1.0 and res["spearman_level_psnr"] >= 0.8
    assert 0.0 <= res["premise"]["gain_db"] < 0.5


@pytest.mark.slow
def test_control_visible_regime_premise_is_weak(tmp_path):
    """``--source photos --regime visible`` (before issue #25): the GT blur shows through the LQ, the baseline
    reads the grade (measured premise gain 0.15 dB at 3000 steps) and level 9 does not restore (+0.07 dB over
    the LQ)."""
    res = _default_run(tmp_path, "oracle", "--source", "photos", "--regime", "visible")
    assert 0.0 <= res["premise"]["gain_db"] < 0.5
    assert res["plus_psnr"][-1] < res["lq_psnr"] + 1.0
