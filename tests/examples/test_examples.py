"""Every script in examples/ runs on the bundled samples (random weights where no checkpoint is on disk)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

# script -> (arguments, files it must leave in its working directory)
CASES = {
    "score_dataset.py": ([], ["results/example_scores/scores.jsonl", "results/example_scores/scores.png"]),
    "retrofit_codeformer.py": ([], []),
    "restore_faces.py": ([], ["results/restore_faces"]),
    "finetune_codeformer_plus.py": (["--steps", "2"], ["results/finetune_codeformer_plus"]),
    "enhance_underwater.py": ([], ["results/underwater"]),
    "compare_models.py": (["--models", "nu2net,nu2net+", "--data", str(EXAMPLES / "data" / "underwater"),
                           "--metrics", "offline,uiqm,uciqe"], ["results/compare/quality.md",
                                                                 "results/compare/grid.png"]),
    "train_iqpfr_tiny.py": (["--steps", "3"], ["runs/iqpfr_tiny"]),
    "control_experiment.py": (["--steps", "2", "--pool", "16", "--eval-draws", "1"],
                              ["results/control_example/control.json", "results/control_example/control.png"]),
    "large_image_and_video.py": ([], ["results/large/tiled.png", "results/large/restored/clip.mp4"]),
    "retrofit_basicsr.py": ([], ["results/retrofit_basicsr/run/final/model.safetensors",
                                 "results/retrofit_basicsr/restored/400_img_.png"]),
    # released weights from the install step (the user's cache); the Compact Real-ESRGAN keeps it quick
    "restore_real_photo.py": (["--photos", "astronaut", "--checkpoint", "realesr-animevideov3.pth"],
                              ["results/restore_real_photo/astronaut.png"]),
}
# scripts that read released files the install step fetched: they see the user's weights directories
USES_RELEASED = {"restore_real_photo.py"}


def test_every_example_is_covered():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(CASES)


@pytest.mark.parametrize("script", sorted(CASES))
def test_example_runs(script, tmp_path):
    args, outputs = CASES[script]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2"}
    if script in USES_RELEASED:
        from tests.conftest import USER_WEIGHTS
        env["IQPRIOR_WEIGHTS"] = os.pathsep.join(USER_WEIGHTS)
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    for out in outputs:
        path = tmp_path / out
        assert path.exists(), f"{script} did not write {out}"
        if path.is_dir():
            assert any(path.rglob("*")), f"{script} left {out} empty"
