"""Training configuration of the IQPFR stages: frozen dataclasses, read from YAML, overridden from the CLI.

A config file has three sections (every key optional; unknown keys are an error)::

    model: {...}   # IQPFRConfig fields (iqprior.models.iqpfr.config)
    data:  {...}   # DataOptions fields
    train: {...}   # TrainOptions fields

and optionally ``stage: 1|2|3``. Files are read with ``yaml.safe_load``;
``overrides`` ("section.key=value", value parsed as YAML) apply on top.
Paper settings are in ``iqprior/configs/iqpfr_stage{1,2,3}.yaml``; where the
paper gives no number (learning rates, batch, steps) they are CodeFormer's,
whose training recipe the paper follows ([54]).
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from ..config import ConfigMixin, check_options, safe_load_bounded
from ..data.degradations import DegradationConfig
from ..levels import DEFAULT_LEVEL
from ..models.iqpfr.config import IQPFRConfig

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
STAGES = (1, 2, 3)


@dataclass(frozen=True)
class DataOptions(ConfigMixin):
    """Where the training images are and how items are made (see :class:`iqprior.data.ScoredImageDataset`)."""

    config_name = "config section 'data'"

    root: Optional[str] = None            # HQ images (FFHQ 512² in the paper)
    scores: Optional[str] = None          # JSONL manifest from `iqprior score`
    default_level: Optional[int] = None   # level for images without a score record
    size: int = 512
    hflip: bool = True
    degradation: Optional[dict] = None    # DegradationConfig fields; None = the paper's Eq. 16 ranges
    val_root: Optional[str] = None        # images for periodic validation (default: first training images)
    val_count: int = 4
    num_workers: int = 2

    def degradation_config(self) -> DegradationConfig:
        return DegradationConfig.from_dict(self.degradation)


@dataclass(frozen=True)
class TrainOptions(ConfigMixin):
    """Optimisation, logging and the loss weights of each stage."""

    config_name = "config section 'train'"

    steps: int = 1000
    batch_size: int = 4                   # per process
    lr: float = 1e-4
    lr_d: float = 7e-5                    # Stage I discriminator
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    lr_milestones: tuple[int, ...] = ()   # MultiStepLR milestones (CodeFormer Stage II: 400k, 450k)
    lr_gamma: float = 0.5
    grad_clip: Optional[float] = None
    ema_decay: float = 0.995              # 0 disables EMA
    amp: bool = True                      # mixed precision on CUDA (ignored on CPU)
    seed: int = 0
    device: Optional[str] = None          # default: cuda if available
    log_every: int = 10
    val_every: int = 500
    save_every: int = 1000
    keep_last: int = 3                    # checkpoints kept (0 = all; never fewer than 2)
    # Stage I (Eqs. 3–6)
    pixel_weight: float = 1.0
    perceptual: str = "vgg19"             # "vgg19" (basicsr, needs vgg19-dcbb9e9d.pth), "vgg19_random", "none"
    perceptual_weight: float = 1.0
    gan_type: str = "vanilla"             # Eq. 5 (log D); "hinge" as CodeFormer's VQGAN
    gan_weight: float = 1.0
    adaptive_gan_weight: bool = True      # VQGAN's gradient-ratio weight (CodeFormer uses it)
    disc_start: int = 30001               # CodeFormer net_d_start_iter
    disc_ndf: int = 64
    disc_layers: int = 4
    codebook_weight: float = 1.0
    # init encoder/decoder/common codebook from vqgan_code1024.pth (Stage I; Stage II without --init)
    vqgan_checkpoint: Optional[str] = None
    # Stages II–III (Eq. 14)
    feat_weight: float = 1.0
    index_weight: float = 0.5             # λ₁
    quality_weight: float = 0.1           # λ₂ (Stage III only)
    quality_members: tuple[str, ...] = ("topiq_nr-face-v1", "musiq")  # the scorer of L_quality
    quality_calibration: Optional[str] = None
    quality_latent: str = "discrete"      # "continuous" = Table 5's comparison
    val_level: int = DEFAULT_LEVEL

    def __post_init__(self):
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        object.__setattr__(self, "lr_milestones", tuple(int(m) for m in self.lr_milestones))
        object.__setattr__(self, "quality_members", tuple(self.quality_members))
        if self.steps < 0 or self.batch_size < 1:
            raise ValueError(f"steps must be >= 0 and batch_size >= 1 (got {self.steps}, {self.batch_size})")
        if self.perceptual not in ("vgg19", "vgg19_random", "none"):
            raise ValueError(f"perceptual must be 'vgg19', 'vgg19_random' or 'none', got {self.perceptual!r}")
        if self.gan_type not in ("vanilla", "hinge"):
            raise ValueError(f"gan_type must be 'vanilla' or 'hinge', got {self.gan_type!r}")
        if self.quality_latent not in ("discrete", "continuous"):
            raise ValueError(f"quality_latent must be 'discrete' or 'continuous', got {self.quality_latent!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")
        for name in ("log_every", "val_every", "save_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0 disables), got {getattr(self, name)}")


@dataclass(frozen=True)
class TrainConfig(ConfigMixin):
    """A whole training run: ``stage`` and the ``model``, ``data`` and ``train`` sections."""

    config_name = "training config"

    stage: int = 1
    model: IQPFRConfig = field(default_factory=IQPFRConfig)
    data: DataOptions = field(default_factory=DataOptions)
    train: TrainOptions = field(default_factory=TrainOptions)

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ValueError(f"stage must be 1, 2 or 3, got {self.stage!r}")

    @classmethod
    def from_dict(cls, d: Optional[Mapping[str, Any]] = None) -> TrainConfig:
        """Sections read as YAML gives them (numbers written ``1e-4`` arrive as strings and are converted)."""
        d = dict(d or {})
        check_options(d, [f.name for f in dataclasses.fields(cls)], "config section(s)")
        stage = coerce(d.get("stage", 1), int, "stage")
        model = d.get("model") or {}
        if not isinstance(model, Mapping):
            raise ValueError(f"config section 'model' must be a mapping of key: value, got {type(model).__name__}")
        hints = typing.get_type_hints(IQPFRConfig)
        model = {k: coerce(v, hints[k], f"model.{k}") if k in hints else v for k, v in model.items()}
        return cls(stage=stage, model=IQPFRConfig.from_dict(model),
                   data=_build(DataOptions, d.get("data") or {}, "data"),
                   train=_build(TrainOptions, d.get("train") or {}, "train"))


def _build(cls, d: Mapping[str, Any], section: str):
    if not isinstance(d, Mapping):
        raise ValueError(f"config section {section!r} must be a mapping of key: value, got {type(d).__name__}")
    check_options(d, [f.name for f in dataclasses.fields(cls)], f"config section {section!r} option(s)")
    hints = typing.get_type_hints(cls)
    values = {k: coerce(v, hints[k], f"{section}.{k}") for k, v in d.items()}
    return cls(**values)


def _describe(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Union:
        inner = [a for a in args if a is not type(None)]
        return " or ".join(_describe(a) for a in inner) + (" or null" if len(inner) < len(args) else "")
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0])}s"
        return f"a list of {len(args)} values ({', '.join(_describe(a) for a in args)})"
    if origin in (dict, Mapping) or tp is dict:
        return "a mapping"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` (as YAML read it) checked against the field type ``tp``; ``TypeError`` naming ``key`` if wrong.

    Numbers written as strings (YAML reads ``1e-4`` as one) are converted;
    lists become tuples where the field is a tuple.
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)

    def bad() -> TypeError:
        return TypeError(f"config key {key} must be {_describe(tp)}, got {value!r} ({type(value).__name__})")

    if origin is Union:
        if value is None and type(None) in args:
            return None
        for a in (a for a in args if a is not type(None)):
            try:
                return coerce(value, a, key)
            except TypeError:
                continue
        raise bad()
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad()
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise bad()
        return tuple(coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise bad()
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    if tp in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise bad()
        try:
            number = float(value)
        except ValueError:
            raise bad() from None
        if tp is int:
            if not number.is_integer():
                raise bad()
            return int(number)
        return number
    if tp is str:
        if not isinstance(value, str):
            raise bad()
        return value
    return value



def resolve_config_path(name: Union[str, Path]) -> Path:
    """A path, or the name of a bundled config (``tiny``, ``iqpfr_stage1``, ... with or without ``.yaml``)."""
    p = Path(name)
    if p.is_file():
        return p
    for cand in (CONFIG_DIR / p.name, CONFIG_DIR / f"{p.name}.yaml"):
        if cand.is_file():
            return cand
    bundled = ", ".join(sorted(q.stem for q in CONFIG_DIR.glob("*.yaml")))
    raise FileNotFoundError(f"no config file {name!r} (bundled configs: {bundled})")


def load_config(path: Optional[Union[str, Path]] = None, overrides: Sequence[str] = (),
                stage: Optional[int] = None) -> TrainConfig:
    """Read a YAML config (``None`` = defaults), apply ``section.key=value`` overrides, then ``stage``."""
    import yaml

    raw: dict[str, Any] = {}
    if path is not None:
        p = resolve_config_path(path)
        try:
            raw = safe_load_bounded(p.read_text(encoding="utf-8", errors="replace"), str(p)) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            what = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise ValueError(f"{p}:{where}: YAML syntax error: {what}; fix the file") from None
        if not isinstance(raw, dict):
            raise ValueError(f"{p} must hold a mapping with sections model/data/train")
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ValueError(f"override {item!r} must look like section.key=value (e.g. train.lr=1e-4)")
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        raw.setdefault(section, {})
        if not isinstance(raw[section], dict):
            raise ValueError(f"cannot override {key}: section {section!r} is not a mapping")
        try:
            raw[section][name] = safe_load_bounded(value, f"override {item!r}")
        except yaml.YAMLError:
            raise ValueError(f"override {item!r}: the value is not valid YAML") from None
    if stage is not None:
        raw["stage"] = stage
    return TrainConfig.from_dict(raw)
