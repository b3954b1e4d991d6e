"""The name-keyed table of adapters (timm's pretrained cfgs, pyiqa's default configs).

One typed description per adapter (:class:`AdapterSpec`, after spandrel's
``ModelDescriptor``), the single source of every per-model fact: the builder,
the base model of a "+" variant, the official files it loads (and which builder
option takes a second file), the files a fine-tune uses, the task, the native
size and the size requirements of the released network, how the model takes a
quality level (the ``net`` submodule the "+" embedding is added to, or built in,
or chosen from the model file), its per-call controls, whether it exports to
ONNX (and why not), the licence and the upstream source. The builders (the "+"
ones through :func:`adapters.plus.plus_builder`), :func:`adapters.create` and
:func:`adapters.registry.configure`, the export, the weights listing, the docs
tables and the applications read this table; no other code branches on a model
name.

User adapters (``adapters.register`` or the ``iqprior.adapters`` entry-point
group) get a spec with the defaults below: a field left unset (``None``) is
taken from the built adapter's own attributes (``task``, ``native_size``,
``controls``, ``export_refused``, ``takes_level``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Optional

from iqprior.fastpath import FastPath

FACE = "face"    # aligned 512² crops, or whole photos through face detection + paste-back
IMAGE = "image"  # the whole image at any size (e.g. underwater enhancement)
TASKS = (FACE, IMAGE)

# How a model takes a quality level (AdapterSpec.condition):
MODULE = "module"             # a "+" variant: the level embedding is added to the output of ``condition_at``
BUILT_IN = "built in"         # conditioned by construction (IQPFR, Eq. 7): ``score`` goes to the network
FROM_FILE = "from the file"   # auto+: the injection point depends on the architecture in the model file
CONDITIONS = (MODULE, BUILT_IN, FROM_FILE)

_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")


@dataclass(frozen=True)
class SizeRequirements:
    """The input sizes a network runs at (spandrel's ``SizeRequirements``): sides of at least ``minimum``,
    multiples of ``multiple_of``, square or not.

    The adapters take any size and bring it there themselves (PUIE-Net, NU2Net resize to
    :meth:`network_size`); unpacks as ``(minimum, multiple_of, square)``.
    """

    minimum: int = 0
    multiple_of: int = 1
    square: bool = False

    def __post_init__(self):
        for name, low in (("minimum", 0), ("multiple_of", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"SizeRequirements.{name} must be an int >= {low}, got {value!r}")

    def __iter__(self) -> Iterator[Any]:
        return iter((self.minimum, self.multiple_of, self.square))

    @property
    def none(self) -> bool:
        """Whether any size works."""
        return self.minimum == 0 and self.multiple_of == 1 and not self.square

    def network_size(self, h: int, w: int) -> tuple[int, int]:
        """The size the network runs at for an ``h`` x ``w`` input: each side rounded down to
        ``multiple_of``, at least ``minimum`` (square: both sides the smaller one)."""
        h, w = (max(self.minimum, v - v % self.multiple_of) for v in (h, w))
        return (min(h, w),) * 2 if self.square else (h, w)


ANY_SIZE = SizeRequirements()


@dataclass(frozen=True)
class AdapterSpec:
    """One adapter: everything about it that is not its code.

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
        native_size: square input size of the released network; ``None`` = any size (or, for a user
            adapter, the built adapter's).
        size_requirements: the sizes the network itself runs at (:class:`SizeRequirements`); the adapter
            brings any input there. ``None``: none, or the built adapter's (``auto``: from the file).
        condition: how the model takes a quality level: :data:`MODULE` (a "+" embedding at
            ``condition_at``; set by giving ``condition_at``), :data:`BUILT_IN`, :data:`FROM_FILE`, or
            ``None`` (no level; for a user adapter: the built adapter's ``takes_level``).
        condition_at: the dotted path of the ``net`` submodule whose output the "+" embedding is
            added to (the same for every configuration); the "+" builder injects there.
        condition_shape: the embedding's shape at the released size (for the docs; the built model's
            comes from ``Adapter.condition_shape()``).
        controls: per-call float options of the forward that an ONNX export keeps as optional inputs
            (e.g. ``("fidelity",)``); ``None`` = the adapter class's own (none on the base class).
        export_refused: why ``iqprior export`` cannot export the model; ``None`` = it can (or, for a
            user adapter, what its class says).
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
    size_requirements: Optional[SizeRequirements] = None
    condition: Optional[str] = None
    condition_at: Optional[str] = None
    condition_shape: Optional[tuple[int, ...]] = None
    controls: Optional[tuple[str, ...]] = None
    export_refused: Optional[str] = None
    licence: str = ""
    source: str = ""
    fast_path: Optional[FastPath] = None
    tiny: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if ":" not in self.builder:
            raise ValueError(f"adapter {self.name!r}: builder must be 'module:function', got {self.builder!r}")
        if self.task is not None and self.task not in TASKS:
            raise ValueError(f"adapter {self.name!r}: task must be one of {TASKS}, got {self.task!r}")
        if self.condition_at is not None:
            if not isinstance(self.condition_at, str) or not _DOTTED.fullmatch(self.condition_at):
                raise ValueError(f"adapter {self.name!r}: condition_at must be a dotted module path of net "
                                 f"(e.g. 'encoder.blocks.3'), got {self.condition_at!r}")
            if self.condition not in (None, MODULE):
                raise ValueError(f"adapter {self.name!r}: condition_at is a module path; condition "
                                 f"{self.condition!r} takes none")
            object.__setattr__(self, "condition", MODULE)
        elif self.condition == MODULE:
            raise ValueError(f"adapter {self.name!r}: condition {MODULE!r} needs condition_at (a module path of net)")
        if self.condition is not None and self.condition not in CONDITIONS:
            raise ValueError(f"adapter {self.name!r}: condition must be one of {CONDITIONS}, got {self.condition!r}")
        if self.size_requirements is not None and not isinstance(self.size_requirements, SizeRequirements):
            raise TypeError(f"adapter {self.name!r}: size_requirements must be a SizeRequirements, got "
                            f"{self.size_requirements!r}")
        if self.controls is not None:
            object.__setattr__(self, "controls", tuple(self.controls))

    @property
    def is_plus(self) -> bool:
        return self.base is not None

    @property
    def takes_level(self) -> bool:
        """Whether the spec says the model takes a quality level (``score=`` changes the output); a user
        adapter whose spec leaves ``condition`` unset may take one too (the built ``Adapter.takes_level``)."""
        return self.condition is not None

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
    """A base adapter and its "+" variant (same files, task, sizes, controls, export and tiny options), built
    by ``adapters/<module>/adapter.py``; the "+" embedding goes to ``net``'s submodule ``plus_at``."""
    base = AdapterSpec(name, f"adapters.{module}.adapter:build_{module}", **common)
    plus = AdapterSpec(f"{name}+", f"adapters.{module}.adapter:build_{module}_plus", base=name, condition_at=plus_at,
                       condition_shape=plus_shape, finetune_options=dict(plus_finetune or {}), **common)
    return [base, plus]


SPECS: dict[str, AdapterSpec] = {s.name: s for s in [
    *_pair("codeformer", "codeformer", plus_at="lq_feat", plus_shape=(256, 16, 16),  # Z_l, the Transformer's input
           plus_finetune={"vqgan_checkpoint": "vqgan_code1024.pth"},  # stage-II code targets, as upstream trains
           official_files=("codeformer.pth",), task=FACE, native_size=512, licence=_S_LAB, fast_path=_CL_SDPA,
           tiny=_TINY_CODEFORMER, controls=("fidelity",),  # upstream's w, per call
           source="sczhou/CodeFormer (Zhou et al., NeurIPS 2022)"),
    *_pair("daefr", "daefr", plus_at="cross_attention", plus_shape=(256, 16, 16),
           official_files=("DAEFR_model.ckpt",), task=FACE, native_size=512,
           licence="MIT (LIAGM/DAEFR; the weights state no licence of their own)",
           fast_path=FastPath(channels_last=True),  # SDPA measured 0.83x here (docs/experiments/speed.md)
           tiny=_TINY_DAEFR,
           source="LIAGM/DAEFR (Tsai et al., ICLR 2024)"),
    *_pair("difface", "difface", plus_at="time_embed", plus_shape=(128,),  # 4 * model_channels
           official_files=("iddpm_ffhq512_ema500000.pth",),
           official_options={"estimator_checkpoint": "swinir_restoration512_L1.pth"},
           task=FACE, native_size=512, licence=_S_LAB, source="zsyOAOA/DifFace (Yue & Loy, TPAMI 2024)",
           fast_path=_CL_SDPA, tiny=_TINY_DIFFACE,
           export_refused="its output comes from a diffusion sampler loop (the SwinIR estimate, then start_step "
                          "UNet steps with random noise), not from one forward pass; see docs/export.md"),
    *_pair("puienet", "puienet", plus_at="decoder.pr_conv", plus_shape=(64, 1, 1),
           official_files=("puie.pth",), task=IMAGE, native_size=None,
           size_requirements=SizeRequirements(16, 8),  # Test_*.py: sides rounded down to 8 (16: the bottleneck)
           fast_path=FastPath(channels_last=True),
           licence="no licence stated (zhenqifu/PUIE-Net)", source="zhenqifu/PUIE-Net (Fu et al., ECCV 2022)"),
    *_pair("nu2net", "nu2net", plus_at="encoder.e_stage4", plus_shape=(512, 1, 1),
           official_files=("NU2Net_ckpt.pth",), task=IMAGE, native_size=None,
           size_requirements=SizeRequirements(16, 16),  # uie_demo.py: sides rounded down to 16
           licence="CC BY-NC 4.0 (RQ-Wu/UnderwaterRanker)", source="RQ-Wu/UnderwaterRanker (Guo et al., AAAI 2023)"),
    *_pair("minires", "minires", plus_at="encoder", plus_shape=(32, 1, 1),
           task=IMAGE, native_size=None, tiny={"width": 4, "blocks": 1},
           size_requirements=SizeRequirements(2, 2),  # one stride-2 level: even sides (odd ones are padded)
           licence="Apache-2.0 (ours; no upstream weights)",
           source="iqprior's own small restorer; a trained minires+ ships with `iqprior demo` (iqprior.demo.recipe)"),
    AdapterSpec("iqpfr", "adapters.iqpfr.adapter:build_iqpfr", task=FACE, native_size=512, tiny={"preset": "tiny"},
                option_files={"vqgan_checkpoint": "vqgan_code1024.pth"},  # Stage I init (`iqprior train`)
                condition=BUILT_IN, condition_shape=(256, 16, 16),  # added to Z_l inside the network (Eq. 7)
                licence="Apache-2.0 (ours; no official weights released)",
                source="IQPFR (arXiv 2503.09294); trained with `iqprior train`", fast_path=_CL_SDPA),
    # the IQPFR authors' release: IQPFR with the released options (joint head, AdaIN lookup, fidelity fusion)
    AdapterSpec("iqpir", "adapters.iqpir.adapter:build_iqpir", official_files=("IQPIR_stage3.pth",), task=FACE,
                native_size=512, tiny={"preset": "tiny"}, condition=BUILT_IN,  # as released: added to Z_l
                condition_shape=(256, 16, 16), controls=("fidelity",), licence=_S_LAB, fast_path=_CL_SDPA,
                source="fengyang1399-pixel/IQPIR (Xiao, Hu et al., CVPR 2026; the IQPFR authors' code)"),
    # any model file spandrel detects (adapters/auto); task, size and the injection point come from the file
    # (tiny: a small random-weight SwinIR x2 from spandrel's class, no file; adapters/auto/tiny.py has more families)
    AdapterSpec("auto", "adapters.auto:build_auto", licence="that of the model file", tiny={"tiny_family": "SwinIR"},
                source="any architecture spandrel detects (chaiNNer-org/spandrel, MIT)"),
    AdapterSpec("auto+", "adapters.auto:build_auto_plus", base="auto", tiny={"tiny_family": "SwinIR"},
                condition=FROM_FILE,  # per architecture: adapters/auto/families.py, or the condition_at option
                licence="that of the model file",
                source="any architecture spandrel detects (chaiNNer-org/spandrel, MIT)"),
]}

