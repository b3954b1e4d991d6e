"""Building one ensemble member from its :class:`MetricSpec`.

pyiqa members are built with ``pretrained=False`` (or by the spec's
``builder``) and their weight files are loaded here through
:func:`iqprior.checkpoint.safe_load` with strict key checks (pyiqa itself
unpickles with ``weights_only=False`` and, for some networks, loads
non-strictly); whatever pyiqa still loads while a network is built goes through
:func:`iqprior.guarded.guarded_loads`. A member is frozen and stays in eval mode even inside a
module put in ``train()``: TOPIQ changes behaviour and MUSIQ crashes otherwise.

Before anything is built, the files a member needs are looked for; when one
is missing and cannot be downloaded, :class:`MemberWeightsMissing` names every
missing file and the directory to put it in.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ..fastpath import FastPath, autocast, set_fast_path
from ..weights import ENV_OFFLINE, WeightsUnavailableError
from .specs import BASICSR, CLIP, HF, HUB_CHECKPOINTS, OPENCV_DATA, PYIQA, MetricSpec, WeightSpec, get_spec


class MemberWeightsMissing(WeightsUnavailableError):
    """A member's weight files are not on disk and cannot be downloaded."""


def _hub_dir() -> Path:
    return Path(torch.hub.get_dir())


def weight_dir(w: WeightSpec) -> Path:
    """The directory where file ``w`` is expected (pyiqa / torch hub / CLIP / HF cache)."""
    if w.where == PYIQA:
        try:
            from pyiqa.utils.download_util import DEFAULT_CACHE_DIR
            return Path(DEFAULT_CACHE_DIR)  # fixed when pyiqa is imported (set TORCH_HOME before)
        except ImportError:
            return _hub_dir() / "pyiqa"
    if w.where == HUB_CHECKPOINTS:
        return _hub_dir() / "checkpoints"
    if w.where == CLIP:
        return _hub_dir() / "clip"
    if w.where in (OPENCV_DATA, BASICSR):  # looked for there; a download goes to the cache
        from .. import weights

        return weights.dependency_dir(w.where) or weights.cache_dir()
    if w.where == HF:
        return Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", "~/.cache/huggingface"))
                    .expanduser() / "hub")
    raise ValueError(f"unknown weight location {w.where!r}")


def weight_path(w: WeightSpec) -> Path:
    """The file of ``w``: found through the weights registry (``IQPRIOR_WEIGHTS``, cache), else its own place."""
    from .. import weights

    found = weights.find(w.file) if w.file in weights.REGISTRY else None
    return found if found is not None else weight_dir(w) / w.file


def weight_present(w: WeightSpec) -> bool:
    if w.where == HF:
        return (weight_dir(w) / ("models--" + w.file.replace("/", "--"))).is_dir()
    return weight_path(w).is_file()


def missing_weights(spec: MetricSpec) -> list[WeightSpec]:
    return [w for w in spec.weights if not weight_present(w)]


def offline() -> bool:
    """True when downloads are known not to work (``IQPRIOR_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``)."""
    return os.environ.get(ENV_OFFLINE) == "1" or os.environ.get("HF_HUB_OFFLINE") == "1"


def member_available(name: str) -> tuple[bool, str]:
    """``(True, "")`` if member ``name`` can be built with real weights now, else ``(False, reason)``."""
    try:
        spec = get_spec(name)
    except ValueError as e:
        return False, str(e)
    try:
        if spec.backend == "pyiqa":
            import pyiqa  # noqa: F401
        else:
            importlib.import_module(spec.backend.split(":")[0])
    except ImportError as e:
        return False, f"cannot import its backend: {e}"
    if spec.remote_code:
        from .remote_code import RemoteCodeRefused, check_remote_code
        try:
            check_remote_code(spec)
        except RemoteCodeRefused as e:
            return False, str(e)
    missing = missing_weights(spec)
    if missing:
        return False, "weights not on disk: " + ", ".join(f"{w.file} (in {weight_dir(w)})" for w in missing)
    return True, ""


def _missing_message(spec: MetricSpec, missing: list[WeightSpec], reason: str) -> str:
    files = "; ".join(f"{w.file} -> {weight_dir(w)}" for w in missing)
    reason = reason if len(reason) < 400 else reason[:400] + "..."
    if spec.backend != "pyiqa":  # files of the weights registry, with their URL and where else they come from
        from .. import weights

        notes = "; ".join(f"{w.file}: {weights.get(w.file).note}" for w in missing if w.file in weights.REGISTRY)
        return (f"IQA member {spec.name!r} needs files that are not on disk ({reason}): {files}. "
                f"`iqprior weights download NAME` fetches them where the network allows"
                f"{' (' + notes + ')' if notes else ''}, or put them in a directory named by IQPRIOR_WEIGHTS.")
    return (f"IQA member {spec.name!r} needs weight files that are not on disk ({reason}): {files}. "
            f"Download them on a machine with network access (e.g. `python -c \"import pyiqa; "
            f"pyiqa.create_metric('{spec.pyiqa_name or spec.name}')\"`) and copy them there; pyiqa's cache "
            f"follows TORCH_HOME.")


def _fetch_pyiqa_file(spec: MetricSpec, w: WeightSpec) -> None:
    """Download one pyiqa weight file into pyiqa's cache (raises MemberWeightsMissing on failure)."""
    from pyiqa.archs.arch_util import get_url_from_name
    from pyiqa.utils.download_util import load_file_from_url
    try:
        load_file_from_url(get_url_from_name(w.file), model_dir=str(weight_dir(w)))
    except Exception as e:  # urllib / hub / OS errors all mean the same here
        raise MemberWeightsMissing(_missing_message(spec, [w], f"download failed: {type(e).__name__}: {e}")) from None


def ensure_weights(spec: MetricSpec) -> None:
    """Make sure every file of ``spec`` is on disk, downloading registered files when possible.

    One :class:`MemberWeightsMissing` names every file that is still missing.
    """
    from .. import weights

    missing = missing_weights(spec)
    if not missing:
        return
    if offline():
        raise MemberWeightsMissing(_missing_message(spec, missing, "offline"))
    failed, reasons = [], []
    for w in missing:
        try:
            if w.file in weights.REGISTRY:
                weights.resolve(w.file)
            elif w.where == PYIQA:
                _fetch_pyiqa_file(spec, w)
        except (WeightsUnavailableError, ValueError) as e:
            failed.append(w)
            reasons.append(str(e).split(";")[0])
    if failed:
        raise MemberWeightsMissing(_missing_message(spec, failed, "download failed: " + " | ".join(reasons)))
    # files in no registry (the HF hub) are fetched by the backend while building; failures are wrapped there


def ensure_all_weights(specs: list[MetricSpec]) -> None:
    """:func:`ensure_weights` for every member; one error names every missing file of every member."""
    failed = []
    for spec in specs:
        try:
            ensure_weights(spec)
        except MemberWeightsMissing:
            failed.append(spec)
    if not failed:
        return
    files = "; ".join(f"{w.file} (for {s.name}) -> {weight_dir(w)}" for s in failed for w in missing_weights(s))
    n = sum(len(missing_weights(s)) for s in failed)
    why = "offline" if offline() else "download failed"
    raise MemberWeightsMissing(
        f"{n} weight file(s) of members {', '.join(s.name for s in failed)} are not on disk ({why}): {files}. "
        f"`iqprior weights download NAME` fetches them on a machine with network access; copy them to the "
        f"directories shown or to a directory named by IQPRIOR_WEIGHTS.")


class Member(nn.Module):
    """A frozen NR-IQA network: ``forward(x)`` with x ``(B, 3, H, W)`` RGB [0, 1] -> ``(B,)`` raw scores.

    ``precision`` (``"fp32"``, ``"bf16"``, ``"fp16"``) autocasts the network of a learned member (one with
    weight files; opt-in, scores move: ``benchmarks/bench_scoring.py`` measures by how much); hand-crafted
    members and our published models (NIQE, BRISQUE: their references' arithmetic) always run in fp32.
    Scores come back as float32.
    """

    def __init__(self, spec: MetricSpec, net: nn.Module):
        super().__init__()
        self.spec = spec
        self.precision = "fp32"
        self.net = net
        self.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        if spec.channels_last:  # the spec's measured fast layout (iqprior.fastpath); weights converted once
            set_fast_path(self.net, FastPath(channels_last=True))

    def train(self, mode: bool = True) -> Member:
        super().train(mode)
        self.net.eval()  # always: TOPIQ skips its resize and MUSIQ crashes in train mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spec.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        learned = self.spec.needs_weights and self.spec.backend == "pyiqa"  # NIQE/BRISQUE keep their arithmetic
        with autocast(x.device, self.precision if learned else "fp32"):
            out = self.net(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        out = torch.as_tensor(out, device=x.device)
        if out.numel() != x.shape[0]:
            out = out.reshape(x.shape[0], -1).mean(dim=1)
        return out.reshape(x.shape[0]).float()

    def extra_repr(self) -> str:
        return f"name={self.spec.name!r}"


def build_member(spec: MetricSpec | str, device: Optional[torch.device | str] = None, pretrained: bool = True
                 ) -> Member:
    """Build member ``spec`` on ``device``.

    ``pretrained=False`` builds a randomly initialised network (tests, speed
    measurements); only members whose weights we load ourselves support it.
    """
    spec = get_spec(spec) if isinstance(spec, str) else spec
    if spec.full_reference:
        raise ValueError(f"{spec.name!r} is a full-reference metric (it needs the ground truth) and cannot be an "
                         f"NR-IQA member; build it with iqprior.scoring.fullref.build_fullref")
    device = torch.device(device) if device is not None else torch.device("cpu")
    if spec.backend != "pyiqa":
        module, cls = spec.backend.split(":")
        kwargs = dict(spec.create_kwargs)
        if spec.weights:  # a published model's parameter files (NIQE, BRISQUE): there is no random version
            if not pretrained:
                raise ValueError(f"IQA member {spec.name!r} is a published model without random weights; "
                                 f"build it with pretrained=True")
            ensure_weights(spec)
            kwargs["files"] = {w.file: weight_path(w) for w in spec.weights}
        net = getattr(importlib.import_module(module), cls)(**kwargs)
        return Member(spec, net).to(device)
    from .remote_code import check_remote_code, pinned_revision

    own_files = [w for w in spec.weights if w.load]
    if not pretrained and len(own_files) != len(spec.weights):
        raise ValueError(f"IQA member {spec.name!r} cannot be built with random weights: its backend loads "
                         f"{', '.join(w.file for w in spec.weights if not w.load)} itself")
    revision = check_remote_code(spec)  # before any file is looked up: hub code never runs without an opt-in
    if pretrained:
        ensure_weights(spec)
    import pyiqa

    from ..checkpoint import CheckpointError
    from ..guarded import guarded_loads

    if spec.builder is not None:
        module, func = spec.builder.split(":")
        build = getattr(importlib.import_module(module), func)
        with guarded_loads():
            net = build({w.file: weight_path(w) for w in spec.weights} if pretrained else None)
        return Member(spec, net).to(device)
    kwargs = dict(spec.create_kwargs)
    if own_files:
        kwargs["pretrained"] = False
    try:
        with guarded_loads(), pinned_revision(spec, revision):
            metric = pyiqa.create_metric(spec.pyiqa_name, device=torch.device("cpu"), **kwargs)
    except CheckpointError:
        raise
    except (OSError, RuntimeError, ValueError) as e:
        if pretrained and missing_weights(spec):
            raise MemberWeightsMissing(_missing_message(spec, missing_weights(spec), f"{type(e).__name__}: {e}")
                                       ) from None
        raise
    net = metric.net
    if pretrained:
        for w in own_files:
            _load_own(net, weight_path(w), w.key)
    return Member(spec, net).to(device)


def _load_own(net: nn.Module, path: Path, key: Optional[str]) -> None:
    from iqprior.checkpoint import load_strict, match_prefix, prefer, read_official_checkpoint

    wrappers = (key,) if key else prefer("params", "state_dict")  # pyiqa's files: params (BasicSR) or state_dict
    state = read_official_checkpoint(path, wrappers)
    own = net.state_dict()
    state = match_prefix(state, own.keys(), ("module.", "net."))
    # keys pyiqa builds but never saves (non-persistent derived buffers) are filled from the net
    for k in own:
        if k not in state and k.endswith(("num_batches_tracked",)):
            state[k] = own[k]
    load_strict(net, state, source=str(path))
