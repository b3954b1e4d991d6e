"""The name-keyed table of adapters (timm's pretrained cfgs, pyiqa's default configs).

Every per-model fact lives here: the builder, the base model of a "+" variant,
the official files it loads (and which builder option takes a second file),
the files a fine-tune uses, the task, the native size of the released network,
where the "+" level embedding is injected, the licence and the upstream source.
The builders, :func:`adapters.create`, the weights listing and the applications
read this table; no other code branches on a model name.

User adapters (``adapters.register`` or the ``iqprior.adapters`` entry-point
group) get a spec with the defaults below; their ``task`` and ``native_size``
come from the built adapter.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from iqprior.fastpath import FastPath

FACE = "face"    # aligned 512² crops, or whole photos through face detection + paste-back
IMAGE = "image"  # the whole image at any size (e.g. underwater enhancement)
TASKS = (FACE, IMAGE)


@dataclass(frozen=True)
class AdapterSpec:
    """One adapter.

    Attributes:
        name: the registry name (``"codeformer+"``).
        builder: ``"module:function"`` returning an :class:`adapters.Adapter` (random init).
        base: for a "+" variant, the adapter it conditions (it loads that model's files).
        official_files: released files; the first is loaded by ``Adapter.load_official``.
        official_options: ``{builder option: released file}`` for further files
            (DifFace's SwinIR estimator).
        finetune_options: ``{builder option: released file}`` a fine-tune uses when the file is on disk.
        option_files: ``{builder option: released file}`` an option accepts (listed, never loaded unasked).
        task: :data:`FACE` or :data:`IMAGE`; ``None`` = take it from the built adapter.
        native_size: square input size of the released network; ``None`` = any size.
        condition_at: the ``net`` submodule whose output the "+" embedding is added to.
        condition_shape: the embedding's shape at the released size (for the docs).
        licence: licence of the released weights.
        source: upstream repository and paper.
        fast_path: the inference measures :func:`adapters.create` (and the builders) turn on unless ``exact=True``
            (:mod:`iqprior.fastpath`), chosen per model from measurements (docs/experiments/speed.md);
            ``None`` = the adapter class's own (the exact path for the base class).
        tiny: builder options of a small random-weight network with the released structure, what
            every test, example and benchmark builds: ``adapters.create(name, tiny=True)`` (or
            ``build_<model>(tiny=True)``); further options override them. ``{}``: the default
            network is already small.
    """

    name: str
    builder: str
    base: Optional[str] = None
    official_files: tuple[str, ...] = ()
    official_options: Mapping[str, str] = field(default_factory=dict)
    finetune_options: Mapping[str, str] = field(default_factory=dict)
    option_files: Mapping[str, str] = field(default_factory=dict)
    task: Optional[str] = None
    native_size: Optional[int] = None
    condition_at: Optional[str] = None
    condition_shape: Optional[tuple[int, ...]] = None
    licence: str = ""
    source: str = ""
    fast_path: Optional[FastPath] = None
    tiny: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if ":" not in self.builder:
            raise ValueError(f"adapter {self.name!r}: builder must be 'module:function', got {self.builder!r}")
        if self.task is not None and self.task not in TASKS:
            raise ValueError(f"adapter {self.name!r}: task must be one of {TASKS}, got {self.task!r}")

    @property
    def is_plus(self) -> bool:
        return self.base is not None

    @property
    def files(self) -> tuple[str, ...]:
        """Every released file this adapter may read (official, extra options, fine-tune)."""
        out = list(self.official_files) + list(self.official_options.values()) + list(self.finetune_options.values())
        out += list(self.option_files.values())
        return tuple(dict.fromkeys(out))


_S_LAB = "S-Lab License 1.0 (non-commercial)"
# Fast paths (docs/experiments/speed.md, "Fast path vs exact path"): channels-last convolutions + fused SDPA
# attention on the VQGAN / diffusion networks; PUIE-Net channels-last only (no attention); NU2Net stays
# exact (channels-last measured slower: its instance norms and bilinear upsampling).
_CL_SDPA = FastPath(channels_last=True, attention=True)

# Tiny random-weight networks with the released structure (``AdapterSpec.tiny``).
_TINY_CODEFORMER = {"config": {"img_size": 64, "nf": 8, "ch_mult": [1, 2, 2, 4], "attn_resolutions": [8],
                               "emb_dim": 16, "codebook_size": 32, "dim_embd": 32, "n_head": 2, "n_layers": 2,
                               "connect_list": ["16", "32"]}}
# 3 encoders, association, Transformer, 3 codebooks at 16x16 input (widths multiples of 32: GroupNorm(32))
_TINY_DAEFR = {"ch": 32, "ch_mult": [1, 2], "resolution": 16, "attn_resolutions": [8], "z_channels": 32,
               "embed_dim": 32, "n_embed": 64, "dim_embd": 64, "n_head": 4, "n_layers": 2, "dim_mlp": 128}
# attention levels, shifted windows, unshuffle + nearest+conv as released; a 32px UNet and its 8x4 estimator
_TINY_DIFFACE = {"unet_config": {"image_size": 32, "channel_mult": [1, 2], "num_res_blocks": [1, 1],
                                 "attention_resolutions": [16], "num_head_channels": 32},
                 "estimator_config": {"img_size": 8, "embed_dim": 12, "depths": [2], "num_heads": [2],
                                      "window_size": 4, "scale": 4, "num_feat": 8}}


def _pair(name: str, module: str, *, plus_at: str, plus_shape: tuple[int, ...], plus_finetune=None,
          **common) -> list[AdapterSpec]:
    """A base adapter and its "+" variant (same files, task, size and tiny options), built by
    ``adapters/<module>/adapter.py``."""
    base = AdapterSpec(name, f"adapters.{module}.adapter:build_{module}", **common)
    plus = AdapterSpec(f"{name}+", f"adapters.{module}.adapter:build_{module}_plus", base=name, condition_at=plus_at,
                       condition_shape=plus_shape, finetune_options=dict(plus_finetune or {}), **common)
    return [base, plus]


SPECS: dict[str, AdapterSpec] = {s.name: s for s in [
    *_pair("codeformer", "codeformer", plus_at="encoder.blocks.<last>", plus_shape=(256, 16, 16),
           plus_finetune={"vqgan_checkpoint": "vqgan_code1024.pth"},  # stage-II code targets, as upstream trains
           official_files=("codeformer.pth",), task=FACE, native_size=512, licence=_S_LAB, fast_path=_CL_SDPA,
           tiny=_TINY_CODEFORMER,
           source="sczhou/CodeFormer (Zhou et al., NeurIPS 2022)"),
    *_pair("daefr", "daefr", plus_at="cross_attention", plus_shape=(256, 16, 16),
           official_files=("DAEFR_model.ckpt",), task=FACE, native_size=512, licence="see LIAGM/DAEFR",
           fast_path=FastPath(channels_last=True),  # SDPA measured 0.83x here (docs/experiments/speed.md)
           tiny=_TINY_DAEFR,
           source="LIAGM/DAEFR (Tsai et al., ICLR 2024)"),
    *_pair("difface", "difface", plus_at="time_embed", plus_shape=(512,),
           official_files=("iddpm_ffhq512_ema500000.pth",),
           official_options={"estimator_checkpoint": "swinir_restoration512_L1.pth"},
           task=FACE, native_size=512, licence=_S_LAB, source="zsyOAOA/DifFace (Yue & Loy, TPAMI 2024)",
           fast_path=_CL_SDPA, tiny=_TINY_DIFFACE),
    *_pair("puienet", "puienet", plus_at="decoder.pr_conv", plus_shape=(64, 1, 1),
           official_files=("puie.pth",), task=IMAGE, native_size=None,
           fast_path=FastPath(channels_last=True),
           licence="no licence stated (zhenqifu/PUIE-Net)", source="zhenqifu/PUIE-Net (Fu et al., ECCV 2022)"),
    *_pair("nu2net", "nu2net", plus_at="encoder.e_stage4", plus_shape=(512, 1, 1),
           official_files=("NU2Net_ckpt.pth",), task=IMAGE, native_size=None,
           licence="CC BY-NC 4.0 (RQ-Wu/UnderwaterRanker)", source="RQ-Wu/UnderwaterRanker (Guo et al., AAAI 2023)"),
    *_pair("minires", "minires", plus_at="encoder", plus_shape=(32, 1, 1),
           task=IMAGE, native_size=None, tiny={"width": 4, "blocks": 1},
           licence="Apache-2.0 (ours; no upstream weights)",
           source="iqprior's own small restorer; a trained minires+ ships with `iqprior demo` (iqprior.demo.recipe)"),
    AdapterSpec("iqpfr", "adapters.iqpfr.adapter:build_iqpfr", task=FACE, native_size=512, tiny={"preset": "tiny"},
                option_files={"vqgan_checkpoint": "vqgan_code1024.pth"},  # Stage I init (`iqprior train`)
                condition_at="Z_l (built in, Eq. 7)", condition_shape=(256, 16, 16),
                licence="Apache-2.0 (ours; no official weights released)",
                source="IQPFR (arXiv 2503.09294); trained with `iqprior train`", fast_path=_CL_SDPA),
    # the IQPFR authors' release: IQPFR with the released options (joint head, AdaIN lookup, fidelity fusion)
    AdapterSpec("iqpir", "adapters.iqpir.adapter:build_iqpir", official_files=("IQPIR_stage3.pth",), task=FACE,
                native_size=512, tiny={"preset": "tiny"}, condition_at="Z_l (built in, as released)",
                condition_shape=(256, 16, 16), licence=_S_LAB, fast_path=_CL_SDPA,
                source="fengyang1399-pixel/IQPIR (Xiao, Hu et al., CVPR 2026; the IQPFR authors' code)"),
    # any model file spandrel detects (adapters/auto); task, size and the injection point come from the file
    # (tiny: a small random-weight SwinIR x2 from spandrel's class, no file; adapters/auto/tiny.py has more families)
    AdapterSpec("auto", "adapters.auto:build_auto", licence="that of the model file", tiny={"tiny_family": "SwinIR"},
                source="any architecture spandrel detects (chaiNNer-org/spandrel, MIT)"),
    AdapterSpec("auto+", "adapters.auto:build_auto_plus", base="auto", tiny={"tiny_family": "SwinIR"},
                condition_at="per family (adapters/auto/families.py)", licence="that of the model file",
                source="any architecture spandrel detects (chaiNNer-org/spandrel, MIT)"),
]}


def get_spec(name: str) -> AdapterSpec:
    """The spec of a built-in adapter (``KeyError`` for unknown names)."""
    return SPECS[name]
