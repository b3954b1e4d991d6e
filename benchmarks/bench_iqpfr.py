"""IQPFR at 512x512: forward/backward seconds per training step of each stage, parameter counts per part,
and the cost of the level condition (with vs without the embedding), measured side by side in one process.

    python benchmarks/bench_iqpfr.py                       # CPU, 1 thread, batch 1, 2 rounds
    python benchmarks/bench_iqpfr.py --device cuda --rounds 10 --batch 4 --amp

Random weights (timing does not depend on them). Stage I = dual-codebook VQGAN
reconstruction + L1 + VGG19 perceptual (random weights) + patch-GAN (generator
and discriminator steps); Stage II = LQ encoder + conditioned Transformer with
index and feature losses (frozen codebooks/decoder, GT codes from the frozen
encoder); Stage III = Stage II + decoding through the straight-through lookup
and a stand-in quality loss (the real IQA network's cost is extra, see
shared/reference README: e.g. TOPIQ 0.5 s fwd + 1.2 s bwd on CPU). The
condition overhead compares Stage II steps and inference with the paper's
``condition="add"`` against ``condition="none"``, alternating rounds.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from iqprior.bench.profiling import interleaved, medians  # noqa: E402
from iqprior.models.iqpfr import IQPFRConfig  # noqa: E402
from iqprior.training.config import TrainConfig, TrainOptions  # noqa: E402
from iqprior.training.stages import build_stage  # noqa: E402


def _config(stage: int, condition: str = "add") -> TrainConfig:
    t = TrainOptions(perceptual="vgg19_random", disc_start=0, adaptive_gan_weight=True, quality_weight=0.1)
    return TrainConfig(stage=stage, model=IQPFRConfig(condition=condition), train=t)


def _batch(b: int, device) -> dict:
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(b, 3, 512, 512, generator=g)
    return {"gt": gt.to(device), "lq": (gt * 0.8).to(device), "hq_plus": torch.ones(b, dtype=torch.bool, device=device),
            "level": torch.full((b,), 9, device=device), "score": torch.full((b,), 0.95, device=device)}



def training_step(stage_mod, batch, device, amp: bool) -> None:
    """One full training step (forward + backward of every optimised loss)."""
    stage_mod.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
        losses, extra = stage_mod.losses(batch, step=10 ** 6)
        total = sum(losses.values())
    total.backward()
    if stage_mod.stage == 1:
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            d = stage_mod.disc_loss(extra["gt"], extra["rec"])
        d.backward()


@torch.no_grad()
def inference(net, x, device, amp: bool) -> None:
    with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
        net(x, score=9)


def count(m) -> int:
    return sum(p.numel() for p in m.parameters())


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--amp", action="store_true", help="float16 autocast (CUDA)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    amp = args.amp and device.type == "cuda"
    torch.manual_seed(0)
    batch = _batch(args.batch, device)
    quality = lambda x: -x.mean()  # noqa: E731  stand-in differentiable objective
    res: dict = {"device": str(device), "threads": args.threads, "batch": args.batch, "amp": amp, "rounds": args.rounds}

    stages = {1: build_stage(_config(1)), 2: build_stage(_config(2)), 3: build_stage(_config(3), quality_fn=quality)}
    s2_none = build_stage(_config(2, "none"))
    for m in (*stages.values(), s2_none):
        m.to(device).train()
    net = stages[2].net
    res["params_M"] = {
        "encoder": count(net.encoder) / 1e6, "codebook_common": count(net.quantize) / 1e6,
        "codebook_hq": count(net.quantize_hq) / 1e6, "decoder": count(net.generator) / 1e6,
        "transformer": (count(net.ft_layers) + count(net.feat_emb) + net.position_emb.numel()) / 1e6,
        "heads": (count(net.idx_pred_layer) + count(net.idx_pred_layer_hq)) / 1e6,
        "level_embedding": count(net.score_embedding) / 1e6, "discriminator": count(stages[1].disc) / 1e6,
        "stage1_trained": sum(p.numel() for p in stages[1].net.parameters() if p.requires_grad) / 1e6,
        "stage2_trained": sum(p.numel() for p in net.parameters() if p.requires_grad) / 1e6,
        "total_network": count(net) / 1e6}

    x = batch["lq"] * 2 - 1

    def train_step(m):
        def run():
            m.net.train()
            training_step(m, batch, device, amp)
        return run

    def infer(net):
        def run():
            net.eval()
            inference(net, x, device, amp)
        return run

    fns = {f"stage{s}": train_step(m) for s, m in stages.items()}
    fns.update({"stage2_nocond": train_step(s2_none), "infer_add": infer(stages[2].net),
                "infer_none": infer(s2_none.net)})
    times = interleaved(fns, args.rounds, device)   # one warm-up call each, then rounds A B ... B A
    res["seconds_median"] = medians(times)
    med = res["seconds_median"]
    res["condition_overhead_ratio"] = {"stage2_step": med["stage2"] / med["stage2_nocond"],
                                       "inference": med["infer_add"] / med["infer_none"]}
    print(json.dumps(res, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
