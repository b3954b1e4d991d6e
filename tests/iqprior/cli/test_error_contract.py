"""The CLI error contract: any failure of any sub-command is one line, ``iqprior CMD: error: ...``, exit != 0.

Also the newcomer's path: ``--list-members`` without ``--out``, level ranges,
random weights said in every file, CSV tables ``pandas.read_csv`` loads.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from iqprior.cli import main
from iqprior.io import read_image, write_image

ROOT = Path(__file__).resolve().parents[3]
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")


@pytest.fixture
def env(tmp_path, face_paths):
    """Small inputs, a text file posing as a checkpoint, a file to put --out under, configs."""
    img = tmp_path / "img"
    img.mkdir()
    write_image(img / "a.png", read_image(face_paths[0])[:, :64, :64])
    (tmp_path / "text.pth").write_text("this is not a checkpoint\n")
    (tmp_path / "file").write_text("x")
    (tmp_path / "syntax.yaml").write_text("train:\n  lr: [1e-4\n")
    (tmp_path / "types.yaml").write_text("train:\n  lr_milestones: [[1, 2]]\n")
    run = tmp_path / "run"  # a training run whose checkpoint files are corrupt
    (run / "checkpoints" / "step_000001").mkdir(parents=True)
    for name in ("model.safetensors", "training_state.pt", "DONE"):
        (run / "checkpoints" / "step_000001" / name).write_text("garbage")
    return tmp_path


D, F = "{d}", "{d}/file/sub"  # placeholders: the env folder, a path under a file
CASES = {
    "score-no-out": (["score", D + "/img", "--members", "offline"], "--out"),
    "score-batch-0": (["score", D + "/img", "--members", "offline", "--out", D + "/s.jsonl", "--batch-size", "0"],
                      "--batch-size"),
    "score-device": (["score", D + "/img", "--members", "offline", "--out", D + "/s.jsonl", "--device", "bogus"],
                     "--device 'bogus'"),
    "score-out-under-file": (["score", D + "/img", "--members", "offline", "--out", F], "is a file"),
    "score-calibration": (["score", D + "/img", "--members", "offline", "--out", D + "/s.jsonl", "--calibration",
                           D + "/nope.json"], "nope.json"),
    "score-member": (["score", D + "/img", "--members", "nope", "--out", D + "/s.jsonl"], "nope"),
    "restore-text-checkpoint": (["restore", D + "/img", "--model", "nu2net", "--checkpoint", D + "/text.pth",
                                 "--out", D + "/o"], "not a checkpoint"),
    "restore-device": (["restore", D + "/img", "--model", "nu2net", "--out", D + "/o", "--device", "bogus"],
                       "--device"),
    "restore-out-under-file": (["restore", D + "/img", "--model", "nu2net", "--out", F], "is a file"),
    "restore-score": (["restore", D + "/img", "--model", "nu2net+", "--out", D + "/o", "--score", "12"],
                      "--score level 12"),
    "restore-sweep": (["restore", D + "/img", "--model", "nu2net+", "--out", D + "/o", "--sweep", "0..x"],
                      "--sweep"),
    "restore-model": (["restore", D + "/img", "--model", "nu2nte", "--out", D + "/o"], "did you mean"),
    "train-yaml-syntax": (["train", "--stage", "1", "--config", D + "/syntax.yaml", "--out", D + "/t"],
                          "YAML syntax error"),
    "train-yaml-types": (["train", "--stage", "1", "--config", D + "/types.yaml", "--out", D + "/t"],
                         "train.lr_milestones"),
    "train-set-types": (["train", "--stage", "1", "--config", "tiny", "--set", "train.amp=3", "--out", D + "/t"],
                        "train.amp"),
    "train-device": (["train", "--stage", "1", "--config", "tiny", "--device", "bogus", "--out", D + "/t"],
                     "--device"),
    "train-out-under-file": (["train", "--stage", "1", "--config", "tiny", "--out", F], "is a file"),
    "train-corrupt-resume": (["train", "--stage", "1", "--config", "tiny", "--data", D + "/img", "--steps", "1",
                              "--out", D + "/run", "--resume"], ""),
    "finetune-text-checkpoint": (["finetune", "--model", "nu2net+", "--checkpoint", D + "/text.pth", "--data",
                                  D + "/img", "--out", D + "/ft"], "not a checkpoint"),
    "finetune-level": (["finetune", "--model", "nu2net+", "--data", D + "/img", "--default-level", "12",
                        "--out", D + "/ft"], "--default-level"),
    "finetune-out-under-file": (["finetune", "--model", "nu2net+", "--data", D + "/img", "--out", F], "is a file"),
    "bench-quality-score": (["bench", "quality", "--models", "nu2net", "--data", D + "/img", "--score", "12",
                             "--out", D + "/bq"], "--score"),
    "bench-quality-no-weights": (["bench", "quality", "--models", "nu2net", "--data", D + "/img", "--metrics",
                                  "entropy", "--out", D + "/bq", "--no-progress"], "--random-init"),
    "bench-speed-batch": (["bench", "speed", "--models", "nu2net", "--batch-sizes", "0", "--out", D + "/sp"],
                          "--batch-sizes"),
    "bench-sweep-levels": (["bench", "sweep", "--models", "nu2net+", "--image", D + "/img/a.png", "--levels",
                            "0..12", "--out", D + "/sw"], "--levels"),
    "bench-table": (["bench", "table", "--runs", D + "/nope", "--out", D + "/tb"], "quality.json"),
    "bench-overopt": (["bench", "overopt", "--model", "nu2net+", "--data", D + "/img", "--optimised", "piqe",
                       "--held-out", "piqe", "--out", D + "/oo"], "both optimised and held out"),
    "bench-grid": (["bench", "grid", "--results", D + "/nope", "--models", "nu2net", "--data", D + "/img",
                    "--out", D + "/g.png"], "no cached output"),
    "bench-histogram": (["bench", "histogram", "--manifest", D + "/nope.jsonl", "--out", D + "/h.png"],
                        "manifest not found"),
    "weights-add-missing": (["weights", "add", D + "/missing.pth"], "missing.pth"),
    "export-out-under-file": (["export", "--model", "nu2net+", "--out", F + ".onnx"], "is a file"),
    "export-out-folder": (["export", "--model", "nu2net+", "--out", D], "is a folder"),
    "export-model": (["export", "--model", "nu2nte", "--out", D + "/m.onnx"], "did you mean"),
    "export-difface": (["export", "--model", "difface+", "--out", D + "/m.onnx"], "sampler loop"),
    "export-size": (["export", "--model", "codeformer", "--size", "256", "--out", D + "/m.onnx"], "native size"),
    "export-opset": (["export", "--model", "nu2net", "--opset", "11", "--out", D + "/m.onnx"], "--opset"),
    "restore-onnx-missing": (["restore", D + "/img", "--onnx", D + "/nope.onnx", "--out", D + "/o"], "no such file"),
    "restore-onnx-not-onnx": (["restore", D + "/img", "--onnx", D + "/text.pth", "--out", D + "/o"],
                              "not a model onnxruntime can load"),
}
CUDA_CASES = {
    "score-cuda": ["score", D + "/img", "--members", "offline", "--out", D + "/s.jsonl", "--device", "cuda"],
    "restore-cuda": ["restore", D + "/img", "--model", "nu2net", "--out", D + "/o", "--device", "cuda"],
    "finetune-cuda": ["finetune", "--model", "nu2net+", "--data", D + "/img", "--out", D + "/ft", "--device", "cuda"],
    "train-cuda": ["train", "--stage", "1", "--config", "tiny", "--device", "cuda", "--out", D + "/t"],
    "bench-speed-cuda": ["bench", "speed", "--models", "nu2net", "--device", "cuda", "--out", D + "/sp"],
}


def _run(argv: list[str], d: Path, capsys) -> tuple[int, list[str]]:
    capsys.readouterr()
    rc = main([a.replace(D, str(d)) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, [line for line in err.splitlines() if line.strip()]


def _command(argv: list[str]) -> str:
    return " ".join(argv[:2]) if argv[0] == "bench" else argv[0]


@pytest.mark.parametrize("case", list(CASES))
def test_every_failure_is_one_line(case, env, capsys):
    argv, fragment = CASES[case]
    rc, lines = _run(argv, env, capsys)
    errors = [line for line in lines if line.startswith(f"iqprior {_command(argv)}: error: ")]
    assert rc != 0 and len(errors) == 1, lines
    assert fragment in errors[0]
    assert not (env / "o").exists() and not (env / "t").exists()  # refused before any output was written


@NO_CUDA
@pytest.mark.parametrize("case", list(CUDA_CASES))
def test_cuda_without_a_gpu_is_one_line(case, env, capsys):
    argv = CUDA_CASES[case]
    rc, lines = _run(argv, env, capsys)
    assert rc == 1 and lines == [f"iqprior {_command(argv)}: error: --device cuda: no CUDA GPU is available here"
                                 + lines[0].split("available here", 1)[1]]
    assert "use --device cpu" in lines[0]


def test_debug_shows_the_traceback(env):
    with pytest.raises(ValueError, match="--batch-size"):
        main(["score", str(env / "img"), "--members", "offline", "--out", str(env / "s.jsonl"), "--batch-size",
              "0", "--debug"])
    with pytest.raises(ValueError, match="--device"):
        main(["--debug", "restore", str(env / "img"), "--model", "nu2net", "--out", str(env / "o"), "--device", "x"])


def test_usage_errors_keep_argparse_form(capsys):
    with pytest.raises(SystemExit) as e:
        main(["score"])
    assert e.value.code == 2 and "iqprior score: error:" in capsys.readouterr().err


def test_level_checks_come_before_models_are_built(env, capsys, monkeypatch):
    import adapters

    def no(*a, **k):
        raise AssertionError("a model was built before the arguments were checked")

    monkeypatch.setattr(adapters, "create", no)
    for argv in (CASES["restore-score"][0], CASES["restore-sweep"][0], CASES["bench-quality-score"][0],
                 CASES["finetune-level"][0]):
        rc, lines = _run(argv, env, capsys)
        assert rc == 1 and len(lines) == 1 and "AssertionError" not in lines[0]


def test_list_members_needs_no_out(env, capsys):
    assert main(["score", str(env / "img"), "--list-members"]) == 0
    assert "piqe" in capsys.readouterr().out


def test_level_ranges_everywhere():
    from iqprior.bench.figures import parse_levels as bench_levels
    from iqprior.cli.restore import parse_sweep
    from iqprior.levels import format_levels, parse_levels

    for text in ("0..9", "0-9", "0,1,2,3,4,5,6,7,8,9", "0-4,5..9"):
        assert parse_levels(text) == list(range(10)) == parse_sweep(text) == bench_levels(text)
    assert parse_levels("9, 2,5") == [2, 5, 9] and format_levels([0, 1, 2, 5, 7, 8]) == "0..2, 5, 7..8"
    for bad in ("", "a", "0..10", "5..2", "-1", "1..2..3"):
        with pytest.raises(ValueError):
            parse_levels(bad)


def test_sweep_titles_show_levels_and_random_weights(env, monkeypatch):
    import iqprior.figures

    titles = []
    real = iqprior.figures.level_sweep

    def spy(images, path, title=None, input_image=None):
        titles.append((sorted(images), title))
        return real(images, path, title=title, input_image=input_image)

    monkeypatch.setattr(iqprior.figures, "level_sweep", spy)
    assert main(["restore", str(env / "img"), "--model", "nu2net+", "--sweep", "0-2", "--out", str(env / "r"),
                 "--no-progress"]) == 0
    assert main(["bench", "sweep", "--models", "nu2net+", "--random-init", "--image", str(env / "img" / "a.png"),
                 "--levels", "3..4,7", "--device", "cpu", "--out", str(env / "sw")]) == 0
    assert titles[0][0] == [0, 1, 2] and "levels 0..2" in titles[0][1]
    assert titles[1][0] == [3, 4, 7] and "3..4, 7" in titles[1][1] and "RANDOM weights" in titles[1][1]


def test_tables_load_with_pandas_and_say_random(env, capsys):
    pd = pytest.importorskip("pandas")
    out = env / "bq"
    assert main(["bench", "quality", "--models", "nu2net,nu2net+", "--random-init", "--data", str(env / "img"),
                 "--metrics", "entropy,mdfs", "--out", str(out), "--no-progress"]) == 0
    df = pd.read_csv(out / "quality.csv")
    assert list(df["method"]) == ["Input", "nu2net", "nu2net+"]
    assert not any(c for c in df.columns if "↑" in c or "↓" in c or c.startswith("#"))
    assert list(df["weights"].fillna("")) == ["", "random", "random"] and df["Entropy"].notna().all()
    assert "RANDOM weights" in (out / "quality.md").read_text()
    assert json.loads((out / "quality.json").read_text())["random_weights"] == ["nu2net", "nu2net+"]
    assert main(["bench", "table", "--runs", str(out), "--out", str(env / "tb")]) == 0
    assert list(pd.read_csv(env / "tb" / "table.csv")["weights"].fillna("")) == ["", "random", "random"]


def test_overopt_report_says_random(env):
    out = env / "oo"
    assert main(["bench", "overopt", "--model", "nu2net+", "--random-init", "--data", str(env / "img"),
                 "--optimised", "piqe", "--held-out", "entropy", "--out", str(out), "--no-progress"]) == 0
    assert "RANDOM weights" in (out / "overopt.md").read_text()
    assert json.loads((out / "overopt.json").read_text())["random_weights"] == ["nu2net+"]


def test_speed_logs_without_logging_errors(env, caplog):
    caplog.set_level("INFO", logger="iqprior.bench")
    assert main(["bench", "speed", "--models", "nu2net", "--sizes", "32", "--batch-sizes", "1", "--iters", "1",
                 "--device", "cpu", "--out", str(env / "sp")]) == 0
    messages = [r.getMessage() for r in caplog.records]  # a format/argument mismatch raises here
    assert any(m.startswith("speed: nu2net 32x32 batch 1:") for m in messages)
    assert "RANDOM" in (env / "sp" / "speed.md").read_text()


def test_shadowing_adapters_package_is_one_line(tmp_path):
    fake = tmp_path / "site" / "adapters"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("# AdapterHub's adapters stand-in\n")
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(ROOT)])}
    res = subprocess.run([sys.executable, "-m", "iqprior", "weights", "list"], capture_output=True, text=True,
                         env=environ, cwd=tmp_path, timeout=120)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 1 and len(lines) == 1 and "AdapterHub" in lines[0]
    assert lines[0].startswith("iqprior weights: error: `import adapters` finds")
