"""``iqprior finetune``: a few CPU steps on a tiny CodeFormer+, resume, the saved adapter."""
from __future__ import annotations

import csv
import json

import pytest
import torch

import adapters
from iqprior.cli import main
from iqprior.training.finetune import EpochSampler, FinetuneConfig

TINY = json.dumps(adapters.spec("codeformer").tiny["config"])  # the spec's tiny network, for --option


@pytest.fixture
def scored(face_paths, tmp_path):
    manifest = tmp_path / "scores.jsonl"
    with open(manifest, "w") as f:
        for p, s in zip(face_paths, [0.95, 0.35, 0.62, 0.12]):
            f.write(json.dumps({"path": str(p), "raw": {}, "score": s, "level": min(9, int(10 * s)),
                                "error": None}) + "\n")
    return manifest


def _args(face_paths, scored, out, steps, *extra):
    return ["finetune", "--model", "codeformer+", "--data", str(face_paths[0].parent), "--scores", str(scored),
            "--option", f"config={TINY}", "--steps", str(steps), "--batch-size", "2", "--lr", "1e-2",
            "--save-every", "2", "--log-every", "1", "--num-workers", "0", "--device", "cpu", "--no-progress",
            "--out", str(out), *extra]


def test_finetune_trains_only_the_embedding_and_resumes(face_paths, scored, tmp_path):
    out = tmp_path / "run"
    base = tmp_path / "base"
    torch.manual_seed(0)
    adapters.create("codeformer+", tiny=True).save_pretrained(base)
    assert main(_args(face_paths, scored, out, 2, "--checkpoint", str(base))) == 0
    first = adapters.create("codeformer+", checkpoint=out / "final")
    start = adapters.create("codeformer+", checkpoint=base)
    # the embedding moved for the levels seen (9, 3, 6, 1), the network did not
    moved = (first.score_embedding.weight - start.score_embedding.weight).abs().sum(1)
    assert moved[[9, 3, 6, 1]].min() > 0 and moved[[0, 2, 4, 5, 7, 8]].max() == 0
    for k, v in start.net.state_dict().items():
        assert torch.equal(first.net.state_dict()[k], v), k

    # resume to 4 steps == an uninterrupted 4-step run
    assert main(_args(face_paths, scored, out, 4, "--checkpoint", str(base), "--resume")) == 0
    straight = tmp_path / "straight"
    assert main(_args(face_paths, scored, straight, 4, "--checkpoint", str(base))) == 0
    a = adapters.create("codeformer+", checkpoint=out / "final").score_embedding.weight
    b = adapters.create("codeformer+", checkpoint=straight / "final").score_embedding.weight
    torch.testing.assert_close(a, b)
    with open(out / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4] and {"feat", "code_ce", "total"} <= set(rows[0])
    assert (out / "checkpoints" / "step_000004").is_dir()


def test_train_base_and_base_model_rules(face_paths, scored, tmp_path):
    out = tmp_path / "tb"
    assert main(_args(face_paths, scored, out, 1, "--train-base")) == 0
    args = _args(face_paths, scored, tmp_path / "x", 1)
    args[args.index("codeformer+")] = "codeformer"
    assert main(args) == 1   # a base model without --train-base: clear error


def test_paired_data(face_paths, scored, tmp_path):
    import shutil
    lq = tmp_path / "lq"
    lq.mkdir()
    for p in face_paths:
        shutil.copy(p, lq / p.name)
    assert main(_args(face_paths, scored, tmp_path / "p", 1, "--lq", str(lq))) == 0


def test_epoch_sampler_shards_and_skips():
    s0, s1 = EpochSampler(10, 2, 0, 2, seed=3), EpochSampler(10, 2, 1, 2, seed=3)
    a, b = list(s0), list(s1)
    assert len(a) == len(b) == 4 and not set(a) & set(b)
    s0.set_epoch(0, start_batch=1)
    assert list(s0) == a[2:]
    with pytest.raises(ValueError, match="batch size"):
        EpochSampler(3, 4)
    with pytest.raises(ValueError, match="steps"):
        FinetuneConfig(model="codeformer+", data=".", out=".", steps=0)


def test_official_files_for_the_finetune_are_used_when_on_disk(tmp_path, monkeypatch):
    """CodeFormer+ takes its stage-II targets from vqgan_code1024.pth when the file is found."""
    from iqprior.training.finetune import FinetuneConfig, _with_finetune_files

    cfg = FinetuneConfig(model="codeformer+", data=".", out=".", options={"fidelity": 0.5})
    with pytest.warns(UserWarning, match="vqgan_code1024.pth is not on disk"):
        assert _with_finetune_files(cfg) == {"fidelity": 0.5}
    (tmp_path / "vqgan_code1024.pth").write_bytes(b"x")
    monkeypatch.setenv("IQPRIOR_WEIGHTS", str(tmp_path))
    assert _with_finetune_files(cfg)["vqgan_checkpoint"] == str(tmp_path / "vqgan_code1024.pth")
    given = FinetuneConfig(model="codeformer+", data=".", out=".", options={"vqgan_checkpoint": "mine.pth"})
    assert _with_finetune_files(given)["vqgan_checkpoint"] == "mine.pth"
