"""Fine-tune CodeFormer+ on score-labelled faces (what `iqprior finetune` does), then restore at every level.

    python examples/finetune_codeformer_plus.py                                  # random weights, tiny, CPU
    python examples/finetune_codeformer_plus.py --checkpoint codeformer.pth --data ffhq512 \
        --scores ffhq_scores.jsonl --steps 20000 --batch-size 8                  # the real thing (GPU)

Scores: an `iqprior score` manifest for the GT images. Without one, this
script scores the bundled faces with the offline members (PIQE, entropy).
LQ inputs are made on the fly by the paper's degradation (Eq. 16); the
losses are CodeFormer's stage II (code cross-entropy, feature L2) with the
GT's level as the condition; only the level embedding is trained.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import adapters  # noqa: E402
from iqprior.cli import main as iqprior  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="codeformer.pth (default: random weights, tiny model)")
    ap.add_argument("--data", default=str(ROOT / "examples" / "data" / "faces"))
    ap.add_argument("--scores", default=None, help="`iqprior score` manifest of --data")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--out", default="results/finetune_codeformer_plus")
    args = ap.parse_args(argv)
    torch.set_num_threads(min(4, torch.get_num_threads()))
    scores = args.scores
    if scores is None:
        scores = str(Path(tempfile.mkdtemp()) / "scores.jsonl")
        print(f"scoring {args.data} with the offline members -> {scores}")
        rc = iqprior(["score", args.data, "--members", "offline", "--calibrate", "--out", scores, "--no-progress"])
        if rc:
            return rc
    tiny = adapters.spec("codeformer+").tiny  # the spec's tiny network, as command-line options
    extra = ["--checkpoint", args.checkpoint] if args.checkpoint else \
        [a for k, v in tiny.items() for a in ("--option", f"{k}={json.dumps(v)}")]
    if args.checkpoint is None:
        print("note: no --checkpoint: RANDOM weights and a tiny configuration; this only shows the workflow")
    rc = iqprior(["finetune", "--model", "codeformer+", "--data", args.data, "--scores", scores,
                  "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--save-every",
                  str(max(1, args.steps // 2)), "--num-workers", "0", "--out", args.out, "--resume", *extra])
    if rc:
        return rc
    face = sorted(Path(args.data).glob("*.png"))[0]
    return iqprior(["restore", str(face), "--model", "codeformer+", "--checkpoint", f"{args.out}/final",
                    "--aligned", "--sweep", "0..9", "--out", f"{args.out}/sweep"])


if __name__ == "__main__":
    sys.exit(main())
