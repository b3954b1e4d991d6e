"""What each training stage trains, against the authors' code (fengyang1399-pixel/IQPIR@a4408c7).

Official, by the parameters that receive a gradient (``requires_grad`` and on the loss's path):

- Stage I (``VQGANModel``, ``VQGAN_512_ds32_nearest_stage1.yml``): the whole VQGAN, both codebooks
  (``quantize``, ``quantize_aesthetic``) included.
- Stage II (``CodeFormerIdxModel``, ``CodeFormer_stage2_dual_codebook.yml``, ``fix_modules: ['generator']``):
  encoder, ``position_emb``, ``feat_emb``, ``ft_layers``, ``idx_pred_layer``, ``score_embed``. The codebooks
  are not in ``fix_modules`` but get no gradient (the lookup is ``lq_feat + (quant - lq_feat).detach()``),
  nor the fusion blocks (``w=0``). Their quality loss runs inside Stage II, so our Stage III trains the same.
"""
from __future__ import annotations

import pytest

from adapters.iqpir import our_key
from iqprior.training.config import load_config
from iqprior.training.stages import build_stage

OFFICIAL = {
    1: {"encoder", "quantize", "quantize_aesthetic", "generator"},
    2: {"encoder", "position_emb", "feat_emb", "ft_layers", "idx_pred_layer", "score_embed"},
    3: {"encoder", "position_emb", "feat_emb", "ft_layers", "idx_pred_layer", "score_embed"},
}
JOINT = ["model.hq_codebook_size=32", "model.head=joint"]  # the released head layout: one name per module


def _trained(stage):
    over = JOINT + (["train.quality_weight=0"] if stage == 3 else [])
    net = build_stage(load_config("tiny", over, stage=stage)).net
    return {n.split(".")[0] for n, p in net.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_each_stage_trains_what_the_official_code_trains(stage):
    assert _trained(stage) == {our_key(k + ".").rstrip(".") for k in OFFICIAL[stage]}


def test_stage2_trains_the_position_embedding():
    net = build_stage(load_config("tiny", stage=2)).net
    assert net.position_emb.requires_grad
    assert {id(p) for p in net.stage2_parameters()} >= {id(net.position_emb)}
    assert not any(p.requires_grad for p in net.generator.parameters())
    assert not net.quantize.embedding.weight.requires_grad and not net.quantize_hq.embedding.weight.requires_grad
