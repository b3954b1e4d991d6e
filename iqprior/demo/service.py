"""What ``iqprior demo`` does, without the web page: pick a model, check an upload, restore, sweep, score.

The restoration itself is :class:`iqprior.faces.Restorer` — the same object and
call ``iqprior restore`` uses — and results become 8-bit PNGs through
:func:`iqprior.io.write_image`, the writer of ``iqprior restore``; so the
demo's output at a level is byte for byte the file ``iqprior restore --model M
--checkpoint C --score LEVEL`` writes (same model, device and options).
"""
from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from iqprior.levels import LEVELS

#: the default: Real-ESRGAN's realesr-animevideov3 made "+" and fine-tuned on real photos by ``iqprior bench real``
#: (its ``recipe.json`` holds the command that rebuilds it, bit for bit on the same floating-point build; BSD-3
#: licence in its folder)
REAL_MODEL = "auto+"
REAL_CHECKPOINT = Path(__file__).resolve().parent / "assets" / "realesr-animevideov3-plus"
#: the fallback when the real model cannot be had (spandrel, the ``auto`` extra, missing): a "minires+" trained by
#: :mod:`iqprior.demo.recipe` on the bundled images
BUNDLED_MODEL = "minires+"
BUNDLED_CHECKPOINT = Path(__file__).resolve().parent / "assets" / "minires-plus"
FACE_MODES = ("aligned", "whole")


def bundled_examples() -> list[Path]:
    """The bundled sample images (:mod:`iqprior.sample_images`, package data)."""
    from iqprior import sample_images
    from iqprior.io import list_images

    return list_images(sample_images.root())


def bundled_recipe(checkpoint: Path = BUNDLED_CHECKPOINT) -> dict[str, Any]:
    """The ``recipe.json`` written with a bundled model (what it was trained on, how, how long)."""
    path = Path(checkpoint) / "recipe.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def real_model_available() -> tuple[bool, str]:
    """Can the bundled real "+" model be served? ``(True, "")``, else ``(False, why)``."""
    import importlib.util

    if not (REAL_CHECKPOINT / "model.safetensors").is_file():
        return False, f"{REAL_CHECKPOINT} has no model.safetensors"
    if importlib.util.find_spec("spandrel") is None:
        return False, "spandrel is not installed (pip install 'iqprior[auto]')"
    return True, ""


def real_choice() -> ModelChoice:
    """The launch entry of the bundled real model, its description from its ``recipe.json``."""
    info = bundled_recipe(REAL_CHECKPOINT)
    v = info.get("verdict", {})
    measured = (f" On {len(info.get('photos', {}).get('heldout', []))} held-out photos, level 9 vs the same model "
                f"fine-tuned without a level: ensemble {info.get('level9_ensemble', '?')} vs "
                f"{info.get('twin_ensemble', '?')}, PSNR {v.get('level9_minus_twin_psnr_db', '?')} dB; "
                f"Spearman(level, quality) {info.get('spearman_level_quality', '?')}." if info else "")
    return ModelChoice("realesr-animevideov3+ (bundled)", REAL_MODEL, str(REAL_CHECKPOINT),
                       "**realesr-animevideov3+**: Real-ESRGAN's released realesr-animevideov3 (SRVGGNetCompact, "
                       "x4 super-resolution; BSD-3-Clause, Xintao Wang et al.) with an IQPFR level embedding, "
                       "fine-tuned on real photos labelled by NIQE and BRISQUE (`iqprior bench real`, "
                       "docs/experiments/real.md). It upscales 4x; the level asks for the quality of its training "
                       f"photos' best (9) or worst (0) grade.{measured}")


def resolve_members(members: str | list[str] = "auto") -> str | list[str]:
    """``"auto"``: the paper's ensemble when every one of its members has its weights on disk, else the
    no-download ``"offline"`` members; anything else (a preset or a list of names) is kept."""
    if members != "auto":
        return members
    from iqprior.scoring import member_available
    from iqprior.scoring.ensemble import preset_members

    return "paper" if all(member_available(s.name)[0] for s in preset_members("paper")) else "offline"


@dataclass(frozen=True)
class ModelChoice:
    """One entry of the page's model list: ``adapters.create(name, checkpoint=checkpoint)``."""

    label: str
    name: str
    checkpoint: Optional[str]
    description: str = ""


def model_choices(model: Optional[str] = None, checkpoint: Optional[str] = None) -> list[ModelChoice]:
    """The launch model first (without ``model``: the bundled real "+" model, or the small "minires+" when that
    cannot be had), then every registered adapter whose official weights are all on disk
    (``checkpoint="official"``, found through :mod:`iqprior.weights`)."""
    import adapters
    from iqprior import weights

    if model is None:
        if checkpoint is not None:
            raise ValueError("--checkpoint needs --model (the adapter the checkpoint belongs to)")
        real, why = real_model_available()
        if real:
            first = real_choice()
        else:
            n = bundled_recipe().get("n_images", "the")
            first = ModelChoice(f"{BUNDLED_MODEL} (bundled)", BUNDLED_MODEL, str(BUNDLED_CHECKPOINT),
                                f"**{BUNDLED_MODEL}**, a small model trained on {n} bundled images by "
                                f"`python -m iqprior.demo.recipe` (a few CPU minutes): it shows the level knob, "
                                f"it is not a good restorer. (The real model is not served: {why}.)")
    else:
        if model not in adapters.list_adapters():
            adapters.spec(model)  # the registry's "unknown adapter ... did you mean" error
        what = f"checkpoint `{checkpoint}`" if checkpoint else "random weights (no --checkpoint): outputs are noise"
        first = ModelChoice(model, model, checkpoint, f"**{model}** with {what}.")
    out = [first]
    for name in adapters.list_adapters():
        files = adapters.official_weights(name)
        if name == first.name or not files or any(weights.find(f) is None for f in files):
            continue
        out.append(ModelChoice(f"{name} (official weights)", name, "official", f"**{name}** with its official weights."))
    return out


@dataclass
class Restored:
    """One restoration: PNG paths of what the model saw and of its output, and their ensemble scores."""

    before: Path
    after: Path
    level: int
    score_before: float
    score_after: float
    faces: int = -1   # faces restored in a whole photo; -1 = not a face model or aligned input


@dataclass
class Swept:
    levels: dict[int, Path] = field(default_factory=dict)
    scores: dict[int, float] = field(default_factory=dict)
    grid: Optional[Path] = None
    score_input: float = float("nan")


class DemoService:
    """Models, scorer and outputs of one demo server (not thread-safe: the page queues one request at a time)."""

    def __init__(self, model: Optional[str] = None, checkpoint: Optional[str] = None, device: Optional[str] = None,
                 members: str | list[str] = "auto", out_dir: Optional[str | Path] = None):
        import tempfile

        from iqprior.argument_checks import check_checkpoint
        from iqprior.distributed import resolve_device

        self.choices = model_choices(model, checkpoint)
        check_checkpoint(checkpoint)
        self.device = resolve_device(device)
        self.members = resolve_members(members)
        self._owns_out_dir = out_dir is None  # a folder of its own is removed by close()
        self.out_dir = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="iqprior-demo-"))
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._models: dict[str, Any] = {}
        self._scorer = None
        self._lock = threading.Lock()

    # -- models -------------------------------------------------------------------------------
    def choice(self, label: Optional[str] = None) -> ModelChoice:
        if label is None:
            return self.choices[0]
        for c in self.choices:
            if c.label == label:
                return c
        raise ValueError(f"unknown model {label!r}; choose one of {', '.join(c.label for c in self.choices)}")

    def model(self, label: Optional[str] = None):
        """The adapter of ``label``, built on first use; only the launch model and the last one are kept."""
        import adapters

        c = self.choice(label)
        if c.label not in self._models:
            keep = self.choices[0].label
            for k in [k for k in self._models if k != keep]:
                del self._models[k]
            self._models[c.label] = adapters.create(c.name, checkpoint=c.checkpoint).to(self.device)
        return self._models[c.label]

    def restorer(self, label: Optional[str] = None, face: str = "aligned"):
        """:class:`iqprior.faces.Restorer` as ``iqprior restore`` builds it (batch 1; ``--aligned`` = face "aligned")."""
        from iqprior.faces.restorer import Restorer

        if face not in FACE_MODES:
            raise ValueError(f"face must be one of {FACE_MODES}, got {face!r}")
        return Restorer(self.model(label), self.device, batch_size=1, aligned=face == "aligned")

    def is_face_model(self, label: Optional[str] = None) -> bool:
        import adapters

        task = adapters.spec(self.choice(label).name).task
        return (task or self.model(label).task) == "face"

    # -- inputs, scores, outputs --------------------------------------------------------------
    @staticmethod
    def load(path: str | Path, name: Optional[str] = None) -> torch.Tensor:
        """Read an upload with the library's reader (the demo's pixel cap on the header first, then decode);
        errors name ``name``."""
        from iqprior.io import ImageReadError, read_image

        from .limits import DEMO_MAX_PIXELS

        if path is None:
            raise ValueError("no image: upload one or pick a sample")
        try:
            return read_image(path, max_pixels=DEMO_MAX_PIXELS)
        except ImageReadError as e:  # the visitor's file name, escaped (no newline or escape sequence reaches the page)
            from iqprior.printable import printable

            raise ImageReadError(str(e).replace(str(path), printable(name or Path(path).name, 120))) from None

    def close(self) -> None:
        """Remove the output folder when the service created it."""
        import shutil

        if self._owns_out_dir:
            shutil.rmtree(self.out_dir, ignore_errors=True)

    @property
    def scorer(self):
        if self._scorer is None:
            import iqprior

            self._scorer = iqprior.create_scorer(self.members, device="cpu")
        return self._scorer

    def score(self, image: torch.Tensor) -> float:
        """Ensemble quality score in [0, 1] (higher is better) of a ``(3, H, W)`` image as it is written (8-bit)."""
        from iqprior.io import tensor_to_uint8

        x = torch.from_numpy(tensor_to_uint8(image)[:, :, ::-1].copy()).permute(2, 0, 1).float() / 255.0
        with torch.no_grad():
            return float(self.scorer(x[None])[0])

    def _write(self, image: torch.Tensor, tag: str) -> Path:
        from iqprior.io import check_finite, write_image

        from .limits import prune_outputs

        prune_outputs(self.out_dir)  # at most MAX_OUTPUTS files, none older than CACHE_SECONDS

        return write_image(self.out_dir / f"{uuid.uuid4().hex[:12]}_{tag}.png", check_finite(image, f"the {tag}"))

    # -- what the page and the API call -----------------------------------------------------------
    def restore(self, path: str | Path, level: int, label: Optional[str] = None, face: str = "aligned",
                name: Optional[str] = None, scores: bool = True) -> Restored:
        level = check_level(level)
        image = self.load(path, name)
        with self._lock:
            r = self.restorer(label, face)
            (out, n), = r.restore([image], level)
            before = r.input_view(image)
            after = self._write(out, f"level{level}")
            nan = float("nan")
            return Restored(self._write(before, "input"), after, level, self.score(before) if scores else nan,
                            self.score(out) if scores else nan, n)

    def sweep(self, path: str | Path, label: Optional[str] = None, face: str = "aligned",
              name: Optional[str] = None) -> Swept:
        """Levels 0..9 side by side (paper Fig. 13): one PNG per level and the grid ``restore --sweep`` draws."""
        from iqprior.figures import level_sweep
        from iqprior.levels import format_levels

        image = self.load(path, name)
        with self._lock:
            r = self.restorer(label, face)
            by_level, _ = r.sweep(image, list(LEVELS))
            out = Swept(score_input=self.score(r.input_view(image)))
            for lv, y in by_level.items():
                out.levels[lv] = self._write(y, f"level{lv}")
                out.scores[lv] = self.score(y)
            stem = Path(name or Path(path).name).stem
            title = f"{self.choice(label).name}: {stem}, levels {format_levels(list(LEVELS))}"
            out.grid = level_sweep(by_level, self.out_dir / f"{uuid.uuid4().hex[:12]}_{stem}_sweep.png", title=title,
                                   input_image=r.input_view(image))
            return out


def check_level(level: Any) -> int:
    """A condition level 0..9 (an int, or a float holding one, as a web form sends it)."""
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise ValueError(f"level must be an integer {LEVELS[0]}..{LEVELS[-1]}, got {level!r}") from None
    if not value.is_integer() or int(value) not in LEVELS:
        raise ValueError(f"level must be an integer {LEVELS[0]}..{LEVELS[-1]}, got {level!r}")
    return int(value)
