"""Retrofit CodeFormer with the image-quality prior: CodeFormer+ equals CodeFormer until fine-tuned.

    python examples/retrofit_codeformer.py                                # random weights, tiny model
    python examples/retrofit_codeformer.py --checkpoint codeformer.pth    # the released model, 512x512

CodeFormer+ adds one zero-initialised level embedding (10 x 256 x 16 x 16) to
the LQ encoder's output (IQPFR, Eq. 7) without editing the network. This
script loads both models with the same weights, checks that their outputs
are identical at every level, then sets one level's embedding by hand to
show that the level now steers the output (fine-tuning learns it instead:
see examples/finetune_codeformer_plus.py).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import adapters  # noqa: E402
from iqprior.io import read_image  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="codeformer.pth, or 'official'")
    ap.add_argument("--image", default=str(ROOT / "examples" / "data" / "faces" / "0143.png"))
    args = ap.parse_args(argv)
    torch.set_num_threads(min(4, torch.get_num_threads()))
    tiny = args.checkpoint is None  # the spec's tiny network (adapters.spec("codeformer").tiny)
    if args.checkpoint is None:
        print("note: no --checkpoint: RANDOM weights and a tiny configuration (64x64); outputs are not faces")
    torch.manual_seed(0)
    base = adapters.create("codeformer", checkpoint=args.checkpoint, tiny=tiny)
    plus = adapters.create("codeformer+", checkpoint=args.checkpoint, tiny=tiny)
    if args.checkpoint is None:
        plus.net.load_state_dict(base.net.state_dict())  # same random weights
    size = base.native_size
    x = torch.nn.functional.interpolate(read_image(args.image)[None], size=(size, size), mode="bilinear",
                                        antialias=True, align_corners=False)
    added = plus.score_embedding.weight.numel()
    print(f"CodeFormer {sum(p.numel() for p in base.net.parameters()) / 1e6:.2f} M parameters; "
          f"CodeFormer+ adds {added} ({plus.score_embedding.weight.shape[0]} levels x {plus.config.latent_shape})")
    with torch.no_grad():
        y = base(x)
        diffs = [float((plus(x, score=s) - y).abs().max()) for s in range(10)]
        print(f"max |CodeFormer+ - CodeFormer| over levels 0..9 at init: {max(diffs):.1e}")
        plus.score_embedding.weight[9].normal_(0, 0.5)
        print(f"after changing level 9's embedding: level 9 differs by {float((plus(x, score=9) - y).abs().max()):.3f}, "
              f"level 0 by {float((plus(x, score=0) - y).abs().max()):.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
