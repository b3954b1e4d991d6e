"""``iqprior bench``: quality tables, resumability, unavailable metrics, speed, over-optimisation, figures.

Runs on the bundled samples with a tiny random-weight adapter registered by
the test ("tiny-test" and its "+" variant) and the offline metrics (piqe,
entropy), so it needs no downloaded file.
"""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

import adapters
from adapters.base import Adapter
from iqprior.cli import main

BUILDS = {"count": 0}


class TinyNet(nn.Module):
    def __init__(self, ch: int = 4):
        super().__init__()
        self.head = nn.Conv2d(3, ch, 3, padding=1)
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(ch, ch, 3, padding=1))
        self.tail = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, x):
        return self.tail(self.body(self.head(x)))


class TinyAdapter(Adapter):
    task = "image"
    native_size = None

    def __init__(self, name: str = "tiny-test"):
        super().__init__(name)
        torch.manual_seed(0)  # base and "+" share their random weights
        self.net = TinyNet()

    def forward(self, x, score=None):
        return x + 0.1 * self.run_net(x, score=score)


def build(**options) -> TinyAdapter:
    BUILDS["count"] += 1
    return TinyAdapter()


def build_plus(**options) -> TinyAdapter:
    BUILDS["count"] += 1
    model = TinyAdapter("tiny-test+")
    model.enable_condition(at="body", shape=(4, 1, 1))
    return model


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(adapters.registry._USER, "tiny-test", adapters.AdapterSpec("tiny-test", f"{__name__}:build"))
    monkeypatch.setitem(adapters.registry._USER, "tiny-test+", adapters.AdapterSpec("tiny-test+", f"{__name__}:build_plus",
                                                                           base="tiny-test"))
    BUILDS["count"] = 0
    return BUILDS


@pytest.fixture
def data(tmp_path, underwater_paths):
    """Two small images (downscaled samples) as LQ, the originals' downscales as GT."""
    from iqprior.io import read_image, write_image

    lq, gt = tmp_path / "lq", tmp_path / "gt"
    for p in underwater_paths[:2]:
        x = torch.nn.functional.interpolate(read_image(p)[None], size=(64, 64), mode="area")[0]
        write_image(gt / f"{p.stem}.png", x)
        write_image(lq / f"{p.stem}.png", (x * 0.8 + 0.05).clamp(0, 1))
    return lq, gt


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_quality_tables_rows_columns(tiny, data, tmp_path):
    lq, gt = data
    out = tmp_path / "res"
    rc = main(["bench", "quality", "--models", "tiny-test,tiny-test+", "--random-init", "--data", str(lq),
               "--gt", str(gt), "--metrics", "offline,mdfs", "--out", str(out), "--no-progress"])
    assert rc == 0
    rows = _read_csv(out / "quality.csv")
    names = [r["method"] for r in rows]
    assert names == ["Input", "tiny-test", "tiny-test+"]  # no comment rows inside the data
    header = list(rows[0])
    for title in ("PSNR", "SSIM", "LPIPS", "PIQE", "Entropy", "MDFS"):  # no arrows in column names
        assert title in header and f"{title} delta" in header and f"{title} rank" in header
    assert [r["weights"] for r in rows] == ["", "random", "random"]
    by = {r["method"]: r for r in rows}
    # offline metrics and PSNR/SSIM are computed for every row from 2 images
    for row in ("Input", "tiny-test", "tiny-test+"):
        assert by[row]["n_images"] == "2"
        for title in ("PSNR", "SSIM", "PIQE", "Entropy"):
            float(by[row][title])
    # MDFS (not in pyiqa) and LPIPS (weights not on disk) are unavailable: empty columns, reasons in md/json
    assert by["tiny-test"]["MDFS"] == "" and by["tiny-test"]["LPIPS"] == ""
    reasons = {m["label"]: m["reason"] for m in json.loads((out / "quality.json").read_text())["metrics"]}
    assert "MDFS" in reasons["MDFS"] and "not on disk" in reasons["LPIPS"]
    # the "+" row has a delta to its base; zero-initialised embedding -> identical outputs -> delta 0
    assert float(by["tiny-test+"]["PSNR delta"]) == pytest.approx(0.0, abs=1e-9)
    assert by["tiny-test"]["PSNR delta"] == ""
    md = (out / "quality.md").read_text()
    assert "| Method | PSNR ↑ | SSIM ↑ | LPIPS ↓ *" in md and "MDFS ↓ *" in md
    assert "| tiny-test+ (RANDOM weights) |" in md and "(+0.00)" in md and "**" in md
    assert "MDFS: pyiqa has no MDFS" in md
    log = (out / "bench.log").read_text()
    assert "MDFS unavailable" in log and "LPIPS unavailable" in log
    # outputs cached per model
    assert len(list((out / "tiny-test+").glob("*.png"))) == 2
    summary = json.loads((out / "quality.json").read_text())
    assert set(summary["per_image"]["tiny-test"]["piqe"]) == {p.name for p in lq.glob("*.png")}


def test_quality_resumes_from_cache(tiny, data, tmp_path):
    lq, _ = data
    out = tmp_path / "res"
    args = ["bench", "quality", "--models", "tiny-test", "--random-init", "--data", str(lq),
            "--metrics", "piqe", "--out", str(out), "--no-progress"]
    assert main(args) == 0 and tiny["count"] == 1
    first = (out / "quality.csv").read_text()
    cached = sorted((out / "tiny-test").glob("*.png"))
    mtimes = [p.stat().st_mtime_ns for p in cached]
    assert main(args) == 0
    assert tiny["count"] == 1  # nothing left to restore: the model is not even built
    assert [p.stat().st_mtime_ns for p in cached] == mtimes
    assert (out / "quality.csv").read_text() == first
    # a removed output is restored again (only that one), and its score recomputed
    cached[0].unlink()
    assert main(args) == 0 and tiny["count"] == 2 and cached[0].is_file()
    # different settings or another input folder do not silently mix with the cache
    assert main(args + ["--score", "3"]) == 1
    other = tmp_path / "other"
    shutil.copytree(lq, other)
    assert main([a if a != str(lq) else str(other) for a in args]) == 1


def test_quality_unknown_and_broken_models_reported(tiny, data, tmp_path):
    lq, _ = data
    out = tmp_path / "res"
    rc = main(["bench", "quality", "--models", "tiny-test,tiny-test+", "--data", str(lq),
               "--checkpoints", f"tiny-test+={tmp_path / 'nope.pth'}", "--random-init",
               "--metrics", "entropy", "--out", str(out), "--no-progress"])
    assert rc == 1  # a model that could not run is a failure; the table of the others is still written
    by = {r["method"]: r for r in _read_csv(out / "quality.csv")}
    assert by["tiny-test+"]["note"] == "not run" and by["tiny-test+"]["Entropy"] == ""
    assert by["tiny-test"]["Entropy"] != ""
    assert "tiny-test+ not run" in (out / "quality.md").read_text()


def test_quality_bad_arguments(tiny, data, tmp_path):
    lq, _ = data
    base = ["bench", "quality", "--models", "tiny-test", "--random-init", "--data", str(lq), "--out",
            str(tmp_path / "r"), "--no-progress"]
    assert main(base + ["--metrics", "psnr"]) == 1          # full-reference metric without --gt
    assert main(base + ["--metrics", "piqee"]) == 1         # unknown metric ("did you mean")


def test_speed_writes_json_and_markdown(tiny, tmp_path):
    out = tmp_path / "speed"
    rc = main(["bench", "speed", "--models", "tiny-test,tiny-test+", "--sizes", "32", "--batch-sizes", "1,2",
               "--device", "cpu", "--iters", "1", "--warmup", "0", "--out", str(out)])
    assert rc == 0
    rows = json.loads((out / "speed.json").read_text())["rows"]
    assert [(r["model"], r["size"], r["batch"]) for r in rows] == [
        ("tiny-test", 32, 1), ("tiny-test", 32, 2), ("tiny-test+", 32, 1), ("tiny-test+", 32, 2)]
    for r in rows:
        assert r["error"] == "" and r["latency_ms"] > 0
        assert r["images_per_s"] == pytest.approx(r["batch"] / (r["latency_ms"] / 1000))
        assert isinstance(r["peak_mem_mb"], float)      # what the probe measures: test_peak_memory_*
    assert all(r["ratio_to_base"] is None for r in rows[:2]) and all(r["ratio_to_base"] > 0 for r in rows[2:])
    md = (out / "speed.md").read_text()
    assert "| tiny-test+ | 32 | 2 |" in md and "vs base" in md


@pytest.mark.parametrize("probe", ["peak rss", "sampling thread"])
def test_peak_memory_sees_a_known_allocation(monkeypatch, probe):
    """The CPU probe of ``bench speed``: a 64 MiB tensor made (and freed) inside the block reads 64 MiB or a bit more."""
    import time

    from iqprior.bench import profiling

    if probe == "sampling thread":
        monkeypatch.setattr(profiling, "_reset_peak_rss", lambda: False)
    with profiling.peak_memory(torch.device("cpu")) as mem:
        x = torch.ones(16 * 2**20)          # 64 MiB, every page touched
        time.sleep(0.1)                      # the sampling thread looks every 5 ms
        del x
    assert 63.0 <= mem["peak_mb"] < 64.0 + 48.0, mem


def test_speed_pairs_by_the_adapter_table(tiny, monkeypatch):
    """A "+" model is paired with the base its spec names, not with its name minus "+"."""
    from iqprior.bench.speed import _groups

    assert _groups(("tiny-test+", "x", "tiny-test")) == [["tiny-test", "tiny-test+"], ["x"]]
    monkeypatch.setitem(adapters.registry._USER, "tiny-test+", adapters.AdapterSpec("tiny-test+", f"{__name__}:build_plus"))
    assert _groups(("tiny-test", "tiny-test+")) == [["tiny-test"], ["tiny-test+"]]   # no base in its spec
    monkeypatch.setitem(adapters.registry._USER, "other", adapters.AdapterSpec("other", f"{__name__}:build_plus",
                                                                      base="tiny-test"))
    assert _groups(("other", "tiny-test")) == [["tiny-test", "other"]]


def test_speed_unknown_model_fails_before_any_work(tiny, tmp_path, capsys):
    out = tmp_path / "speed"
    assert main(["bench", "speed", "--models", "tiny-test,nope", "--sizes", "16", "--batch-sizes", "1",
                 "--device", "cpu", "--iters", "1", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [next(e for e in err if e.startswith("iqprior bench speed: error:"))]
    assert "unknown adapter 'nope'" in err[0] and not out.exists() and tiny["count"] == 0


def test_overopt_report_flags_divergence():
    from iqprior.bench.metrics import get_metric
    from iqprior.bench.overopt import overopt_report

    piqe, ent = get_metric("piqe"), get_metric("entropy")  # ranges 0..100 (lower better), 0..8
    ref = {"piqe": {"a": 50.0, "b": 50.0}, "entropy": {"a": 6.0, "b": 6.0}}
    gamed = {"piqe": {"a": 20.0, "b": 30.0}, "entropy": {"a": 5.6, "b": 5.8}}   # piqe much better, entropy worse
    r = overopt_report("m", "input", gamed, ref, [piqe], [ent], threshold=0.05)
    assert r.optimised_gain == pytest.approx(0.25) and r.held_out_gain == pytest.approx(-0.3 / 8)
    assert r.diverged and r.gap == pytest.approx(0.25 + 0.3 / 8) and r.disagreement == 1.0
    assert "DIVERGED" in r.verdict
    honest = {"piqe": {"a": 40.0, "b": 40.0}, "entropy": {"a": 6.7, "b": 6.7}}  # 0.10 vs 0.0875
    r = overopt_report("m", "input", honest, ref, [piqe], [ent], threshold=0.05)
    assert not r.diverged and r.transfer == pytest.approx(0.875) and r.verdict.startswith("consistent")


def test_overopt_command(tiny, data, tmp_path):
    lq, _ = data
    out = tmp_path / "oo"
    rc = main(["bench", "overopt", "--model", "tiny-test+", "--reference", "tiny-test", "--random-init",
               "--data", str(lq), "--optimised", "piqe", "--held-out", "entropy,mdfs", "--out", str(out),
               "--no-progress", "--fail-on-divergence"])
    assert rc == 0  # "+" with a zero embedding = its base: no gain, no divergence
    rep = json.loads((out / "overopt.json").read_text())
    assert rep["n_images"] == 2 and not rep["diverged"]
    assert rep["optimised_gain"] == pytest.approx(0.0, abs=1e-9) and "MDFS" in rep["unavailable"]
    assert "Over-optimisation monitor" in (out / "overopt.md").read_text()


def test_figures(tiny, data, tmp_path):
    lq, gt = data
    res = tmp_path / "res"
    assert main(["bench", "quality", "--models", "tiny-test,tiny-test+", "--random-init", "--data", str(lq),
                 "--metrics", "entropy", "--out", str(res), "--no-progress"]) == 0
    grid = tmp_path / "fig" / "grid.png"
    assert main(["bench", "grid", "--results", str(res), "--models", "tiny-test,tiny-test+", "--data", str(lq),
                 "--gt", str(gt), "--size", "32", "--out", str(grid)]) == 0
    assert grid.stat().st_size > 0
    assert main(["bench", "grid", "--results", str(res), "--models", "other", "--data", str(lq),
                 "--out", str(grid)]) == 1  # no cached outputs: says which command to run
    first = sorted(lq.glob("*.png"))[0]
    assert main(["bench", "sweep", "--models", "tiny-test+", "--random-init", "--image", str(first),
                 "--levels", "0,9", "--device", "cpu", "--out", str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig" / "sweep_tiny-testplus.png").is_file()
    assert main(["bench", "sweep", "--models", "tiny-test", "--random-init", "--image", str(first),
                 "--out", str(tmp_path / "fig")]) == 1  # not a "+" model
    manifest = tmp_path / "scores.jsonl"
    manifest.write_text("".join(json.dumps({"path": f"{i}.png", "raw": {}, "score": i / 10, "level": i}) + "\n"
                                for i in range(10)))
    hist = tmp_path / "fig" / "hist.png"
    assert main(["bench", "histogram", "--manifest", str(manifest), "--out", str(hist)]) == 0
    assert hist.stat().st_size > 0


def test_paper_metric_list_and_availability():
    from iqprior.bench.metrics import availability, resolve_metrics

    paper = resolve_metrics("paper")
    assert [m.title for m in paper] == ["TOPIQ-GFIQA ↑", "MUSIQ-GFIQA ↑", "MUSIQ-KonIQ ↑", "MUSIQ-AVA ↑",
                                        "ARNIQA ↑", "MDFS ↓", "Q-Align ↑", "CLIP-IQA ↑"]
    for m in paper:
        ok, why = availability(m)  # never raises; a reason whenever unavailable
        assert isinstance(ok, bool) and (ok or why)
    assert not availability(paper[1])[0] and "GFIQA" in availability(paper[1])[1]
    with_gt = resolve_metrics("underwater", gt=True)
    assert [m.label for m in with_gt] == ["PSNR", "SSIM", "LPIPS", "URanker", "UCIQE", "UIQM"]  # Table 6 order


def test_columns_take_range_direction_and_reference_from_the_metric_table():
    import dataclasses

    from iqprior.bench.metrics import METRICS, BenchMetric, get_metric

    # display fields only: range, direction and full-reference live in iqprior.scoring.specs.SPECS
    assert {f.name for f in dataclasses.fields(BenchMetric)} == {"key", "label", "member", "decimals", "missing",
                                                                  "missing_lower_better"}
    lpips, koniq = get_metric("lpips"), get_metric("musiq-koniq")
    assert lpips.title == "LPIPS ↓" and lpips.full_reference and not koniq.full_reference
    assert koniq.score_range == (0.0, 100.0) and get_metric("musiq") is koniq
    assert all(m.spec is not None or m.missing for m in METRICS.values())
    with pytest.raises(ValueError, match="either a member"):
        BenchMetric("x", "X")
    with pytest.raises(ValueError, match="not in"):
        BenchMetric("x", "X", member="nope")


def test_bench_help_and_no_subcommand(capsys):
    assert main(["bench"]) == 2
    with pytest.raises(SystemExit) as e:
        main(["bench", "quality", "--help"])
    assert e.value.code == 0 and "--metrics" in capsys.readouterr().out


def test_table_ranks_and_deltas_follow_direction(monkeypatch):
    from iqprior.bench.metrics import get_metric
    from iqprior.bench.tables import TableRow, deltas, ranks, to_markdown

    # "+" rows pair with their base by the spec (AdapterSpec.base), not by the name
    monkeypatch.setitem(adapters.registry._USER, "a", adapters.AdapterSpec("a", f"{__name__}:build"))
    monkeypatch.setitem(adapters.registry._USER, "a+", adapters.AdapterSpec("a+", f"{__name__}:build_plus", base="a"))
    monkeypatch.setitem(adapters.registry._USER, "b+", adapters.AdapterSpec("b+", f"{__name__}:build_plus"))  # no base

    mdfs, ent = get_metric("mdfs"), get_metric("entropy")  # lower better, higher better
    rows = [TableRow("Input", {"mdfs": 1.0, "entropy": 9.0}, ranked=False),
            TableRow("a", {"mdfs": 18.41, "entropy": 5.0}), TableRow("a+", {"mdfs": 18.08, "entropy": 6.0}),
            TableRow("b", {"mdfs": 19.00, "entropy": 6.0}), TableRow("b+", {"mdfs": 20.0, "entropy": 1.0})]
    rk = ranks(rows, [mdfs, ent])
    assert rk[("a+", "mdfs")] == 1 and rk[("a", "mdfs")] == 2 and ("b", "mdfs") not in rk
    assert rk[("a+", "entropy")] == rk[("b", "entropy")] == 1 and rk[("a", "entropy")] == 2  # tie shares
    assert ("Input", "mdfs") not in rk
    assert deltas(rows, [mdfs, ent]) == {("a+", "mdfs"): pytest.approx(0.33), ("a+", "entropy"): 1.0}
    md = to_markdown(rows, [mdfs, ent])
    assert "| a+ | **18.08** (+0.33) | **6.000** (+1.000) |" in md and "| a | _18.41_ | _5.000_ |" in md


def test_table_over_datasets(tiny, data, tmp_path):
    lq, _ = data
    runs = []
    for name in ("A", "B"):
        runs.append(tmp_path / name)
        assert main(["bench", "quality", "--models", "tiny-test,tiny-test+", "--random-init", "--data", str(lq),
                     "--metrics", "entropy,mdfs", "--out", str(runs[-1]), "--no-progress"]) == 0
    out = tmp_path / "t1"
    assert main(["bench", "table", "--runs", ",".join(map(str, runs)), "--names", "LFW-Test,WIDER-Test",
                 "--out", str(out)]) == 0
    md = (out / "table.md").read_text()
    assert "| Dataset | Method | Entropy ↑ | MDFS ↓ * |" in md
    assert "| LFW-Test | Input |" in md and "| WIDER-Test | Input |" in md and "|  | tiny-test+ (RANDOM weights) |" in md
    rows = _read_csv(out / "table.csv")
    assert [(r["dataset"], r["method"]) for r in rows] == [
        ("LFW-Test", "Input"), ("LFW-Test", "tiny-test"), ("LFW-Test", "tiny-test+"),
        ("WIDER-Test", "Input"), ("WIDER-Test", "tiny-test"), ("WIDER-Test", "tiny-test+")]
    assert main(["bench", "table", "--runs", str(tmp_path / "nope"), "--out", str(out)]) == 1
