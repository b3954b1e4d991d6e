"""Retrofit your own model: basicsr's RRDBNet (ESRGAN's generator) with a quality prior, through the CLI.

    python examples/retrofit_basicsr.py               # tiny RRDBNet, RANDOM weights, a few CPU steps
    python examples/retrofit_basicsr.py --steps 500 --num-feat 64 --num-block 23 --weights RRDB.pth

Nobody here wrote RRDBNet. This script:

1. wraps it in an :class:`adapters.Adapter` (``RRDBAdapter`` below: the [0, 1]
   convention, padding to a multiple of 4, the L1 objective) whose "+" variant
   adds a zero-initialised level embedding to the trunk's output ``conv_body``;
2. runs the adapter contract on it (:func:`adapters.testing.check_adapter`);
3. declares it in the ``iqprior.adapters`` entry-point group, as a package
   would in its ``pyproject.toml``::

       [project.entry-points."iqprior.adapters"]
       "rrdb" = "retrofit_basicsr:build_rrdb"
       "rrdb+" = "retrofit_basicsr:build_rrdb_plus"

   (here: a ``.dist-info`` folder written next to the outputs and put on
   ``PYTHONPATH``, which is what ``pip install`` does for you);
4. fine-tunes the embedding with ``iqprior finetune --model rrdb+`` and restores
   with ``iqprior restore --model rrdb+ --checkpoint .../final`` — the stock
   commands, no wrapper script.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from adapters import Adapter  # noqa: E402
from iqprior.levels import ScoreLike  # noqa: E402


class RRDBAdapter(Adapter):
    """``y = model(x, score=None)``: x, y ``(B, 3, H, W)`` RGB in [0, 1], any size; y not clamped.

    RRDBNet at ``scale=1`` (basicsr pixel-unshuffles by 4 first), so the input is
    reflect-padded to a multiple of 4 and the output cropped back.
    """

    task = "image"        # `iqprior restore` processes whole images
    native_size = None    # any size

    def __init__(self, name: str = "rrdb", num_feat: int = 8, num_block: int = 2, num_grow_ch: int = 4,
                 weights: Optional[str] = None):
        super().__init__(name, {"num_feat": num_feat, "num_block": num_block, "num_grow_ch": num_grow_ch})
        from iqprior.basicsr_compat import import_basicsr
        RRDBNet = import_basicsr("basicsr.archs.rrdbnet_arch").RRDBNet
        self.net = RRDBNet(num_in_ch=3, num_out_ch=3, scale=1, num_feat=num_feat, num_block=num_block,
                           num_grow_ch=num_grow_ch)
        if weights is not None:
            self.load_official(weights)  # basicsr files keep the state dict under params_ema / params

    def forward(self, x: torch.Tensor, score: Optional[ScoreLike] = None) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad = (0, -w % 4, 0, -h % 4)
        y = self.run_net(F.pad(x, pad, mode="reflect") if any(pad) else x, score=score)
        return y[..., :h, :w]

    def finetune_losses(self, lq: torch.Tensor, gt: torch.Tensor, score: ScoreLike) -> dict[str, torch.Tensor]:
        """ESRGAN's pixel loss (L1) with the GT's level as the condition."""
        return {"l1": F.l1_loss(self(lq, score=score), gt)}


def build_rrdb(**options: Any) -> RRDBAdapter:
    return RRDBAdapter("rrdb", **options)


def build_rrdb_plus(**options: Any) -> RRDBAdapter:
    """RRDBNet + a level embedding (one value per channel) added to the trunk output ``conv_body``."""
    model = RRDBAdapter("rrdb+", **options)
    model.enable_condition("conv_body", shape=(model.net.conv_body.out_channels, 1, 1))
    return model


ENTRY_POINTS = """[iqprior.adapters]
rrdb = retrofit_basicsr:build_rrdb
rrdb+ = retrofit_basicsr:build_rrdb_plus
"""


def declare_entry_points(site: Path) -> Path:
    """Write the ``.dist-info`` an installed package would have (metadata + entry points) under ``site``."""
    info = site / "retrofit_basicsr_example-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: retrofit-basicsr-example\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return site


def iqprior_cmd(args: list[str], site: Path) -> None:
    """Run ``python -m iqprior ARGS`` with the example's package "installed" (on PYTHONPATH)."""
    path = os.pathsep.join([str(site), str(Path(__file__).parent), str(ROOT), os.environ.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "iqprior", *args]
    print("$ iqprior " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": path})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / "examples" / "data" / "faces"), help="GT (HQ) images")
    ap.add_argument("--inputs", default=str(ROOT / "examples" / "data" / "underwater"), help="images to restore")
    ap.add_argument("--out", default="results/retrofit_basicsr")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--size", type=int, default=64, help="training crop size")
    ap.add_argument("--num-feat", type=int, default=8)
    ap.add_argument("--num-block", type=int, default=2)
    ap.add_argument("--weights", default=None, help="a basicsr RRDBNet file (scale 1) to start from")
    args = ap.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    out = Path(args.out)
    if args.weights is None:
        print("note: no --weights: RRDBNet has RANDOM weights; the outputs are not restored images")

    # 1-2. the adapter passes the contract (identity at init, embedding-only gradients, round trip, threads...)
    from adapters.testing import check_adapter
    print(check_adapter(build_rrdb_plus(num_feat=args.num_feat, num_block=args.num_block)))

    # 3. "install" it: every iqprior command now lists rrdb and rrdb+
    site = declare_entry_points(out / "site")
    options = [f"--option=num_feat={args.num_feat}", f"--option=num_block={args.num_block}"]
    if args.weights:
        options.append(f"--option=weights={args.weights}")

    # 4. fine-tune the level embedding on GT images (LQ synthesised by the paper's degradation), then restore
    iqprior_cmd(["finetune", "--model", "rrdb+", "--data", args.data, "--default-level", "9", "--size",
                 str(args.size), "--steps", str(args.steps), "--batch-size", "2", "--num-workers", "0",
                 "--save-every", str(args.steps), "--device", "cpu", "--out", str(out / "run"), "--no-progress",
                 *options], site)
    iqprior_cmd(["restore", args.inputs, "--model", "rrdb+", "--checkpoint", str(out / "run" / "final"),
                 "--device", "cpu", "--out", str(out / "restored"), "--no-progress"], site)
    print(f"restored images in {out / 'restored'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
