"""The name-keyed table of IQA metrics (pyiqa's ``default_model_configs`` style).

Every per-metric difference lives here: the backend and its constructor
arguments, full- or no-reference, direction, documented score range, weight
files and where they are kept, licence and whether gradients flow. Code
elsewhere (the scorer, the benchmark tables) reads the table and never
branches on a metric's name.

No-reference metrics are the ensemble members (:mod:`iqprior.scoring.members`);
full-reference ones (PSNR, SSIM, LPIPS, ``full_reference=True``) are built by
:mod:`iqprior.scoring.fullref` and score an image against its ground truth.
Files marked ``load=True`` are loaded by iqprior through
:func:`iqprior.checkpoint.safe_load` with strict key checking; the network is
built with ``pretrained=False`` (or by a ``builder``) so pyiqa never unpickles
a file itself. File names are those of the weights registry
(:data:`iqprior.weights.REGISTRY`), which holds their URLs and hashes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

# Where a weight file is looked for; resolved in members.weight_path().
PYIQA = "pyiqa"             # torch.hub.get_dir()/pyiqa  (pyiqa's DEFAULT_CACHE_DIR)
HUB_CHECKPOINTS = "hub"     # torch.hub.get_dir()/checkpoints (torchvision / load_state_dict_from_url)
CLIP = "clip"               # torch.hub.get_dir()/clip (OpenAI CLIP, sha256-checked by clip.load)
HF = "huggingface"          # the Hugging Face hub cache (HF_HOME)
OPENCV_DATA = "opencv-data"  # the system's OpenCV data (Debian's opencv-data: /usr/share/opencv4/quality)
BASICSR = "basicsr"         # inside the installed basicsr package (basicsr/metrics)


@dataclass(frozen=True)
class WeightSpec:
    """One file a member needs. ``load`` = we load it into the network ourselves (strict)."""

    file: str
    where: str = PYIQA
    load: bool = False            # True: iqprior loads it (weights_only=True) into the built network
    key: Optional[str] = None     # wrapper key inside the file ("params"), None = raw / auto


@dataclass(frozen=True)
class MetricSpec:
    """One IQA metric.

    Attributes:
        name: our name (the key of :data:`SPECS`).
        backend: ``"pyiqa"`` or ``"module:Class"`` of an ``nn.Module`` whose
            ``forward(x)`` maps ``(B, 3, H, W)`` RGB [0, 1] to ``(B,)`` raw scores;
            a class whose spec lists weight files gets them as ``files={name: path}``.
        builder: ``"module:function"`` that builds the pyiqa network itself,
            ``build(files or None)``, where pyiqa's constructor would read
            files on its own (see :mod:`iqprior.scoring.builders`).
        pyiqa_name: the pyiqa metric name (pyiqa backend).
        full_reference: scores ``x`` against a ground truth ``gt`` (as pyiqa's
            ``metric_mode="FR"``); such a metric is no ensemble member.
        lower_better: raw scores where lower is better are flipped when normalised.
        score_range: documented ``(low, high)`` of the raw score, used to
            normalise before a dataset calibration exists.
        weights: files needed; empty for hand-crafted metrics.
        differentiable: gradients reach the input (usable in :class:`QualityLoss`).
        create_kwargs: extra constructor arguments (after the pyiqa defaults).
        licence: licence of the weights (or the metric code for weightless ones).
        paper_name: the name the IQPFR paper uses, if any.
        note: anything a user should know (stand-ins, size, limits).
        channels_last: run the network in channels-last memory format (CNN
            members, measured faster on CPU; scores move by float rounding only).
        remote_code: the Hugging Face repo whose Python code the backend runs
            (``trust_remote_code``); such a member is built only on an explicit
            opt-in with a pinned commit (:mod:`iqprior.scoring.remote_code`).
    """

    name: str
    backend: str = "pyiqa"
    pyiqa_name: Optional[str] = None
    builder: Optional[str] = None
    full_reference: bool = False
    lower_better: bool = False
    score_range: tuple[float, float] = (0.0, 1.0)
    weights: tuple[WeightSpec, ...] = ()
    differentiable: bool = True
    create_kwargs: Mapping[str, Any] = field(default_factory=dict)
    licence: str = ""
    paper_name: Optional[str] = None
    note: str = ""
    channels_last: bool = False
    remote_code: Optional[str] = None

    def normalise(self, raw):
        """Map raw scores to [0, 1] by the documented range, flipped if lower is better (unclipped)."""
        lo, hi = self.score_range
        s = (raw - lo) / (hi - lo)
        return 1.0 - s if self.lower_better else s

    @property
    def needs_weights(self) -> bool:
        return bool(self.weights)


_TOPIQ_FACE = dict(semantic_model_name="resnet50", use_ref=False, test_img_size=512,
                   backbone_pretrain=False, align_crop_face=False, model_name="local_face")

SPECS: dict[str, MetricSpec] = {s.name: s for s in [
    MetricSpec(
        "topiq_nr-face-v1", pyiqa_name="topiq_nr-face-v1", score_range=(0.0, 1.0),
        weights=(WeightSpec("topiq_nr_gfiqa_res50-d76bf1ae.pth", load=True, key="params"),),
        create_kwargs=_TOPIQ_FACE, licence="CC BY-NC-SA 4.0 (pyiqa weights)", paper_name="TOPIQ-GFIQA",
        channels_last=True,
        note="TOPIQ trained on GFIQA-20k; built without pyiqa's facexlib alignment (aligned crops), so "
             "batches and gradients work"),
    MetricSpec(
        "topiq_nr-face", pyiqa_name="topiq_nr-face", score_range=(0.0, 1.0),
        weights=(WeightSpec("topiq_nr_cgfiqa_res50-0a8b8e4f.pth", load=True, key="params"),),
        create_kwargs=_TOPIQ_FACE, licence="CC BY-NC-SA 4.0 (pyiqa weights)", channels_last=True,
        note="TOPIQ trained on CGFIQA-40k; the paper's MUSIQ-GFIQA stand-in in the 'paper' preset "
             "(pyiqa has no MUSIQ trained on GFIQA)"),
    MetricSpec(
        "musiq", pyiqa_name="musiq", score_range=(0.0, 100.0),
        weights=(WeightSpec("musiq_koniq_ckpt-e95806b9.pth", load=True),),
        create_kwargs=dict(pretrained=False, num_class=1), licence="Apache-2.0 (MUSIQ)",
        paper_name="MUSIQ-KonIQ"),
    MetricSpec(
        "musiq-ava", pyiqa_name="musiq-ava", score_range=(1.0, 10.0),
        weights=(WeightSpec("musiq_ava_ckpt-e8d3f067.pth", load=True),),
        create_kwargs=dict(pretrained=False, num_class=10), licence="Apache-2.0 (MUSIQ)",
        paper_name="MUSIQ-AVA", note="aesthetic quality (AVA), 1..10"),
    MetricSpec(
        "clipiqa", pyiqa_name="clipiqa", score_range=(0.0, 1.0),
        builder="iqprior.scoring.builders:build_clipiqa",
        weights=(WeightSpec("RN50.pt", where=CLIP, load=True),), licence="MIT (OpenAI CLIP)",
        paper_name="CLIP-IQA",
        note="needs pkg_resources (setuptools<81); CLIP's TorchScript file is read as tensors, never run"),
    MetricSpec(
        "arniqa", pyiqa_name="arniqa", score_range=(0.0, 1.0),
        builder="iqprior.scoring.builders:build_arniqa",
        weights=(WeightSpec("ARNIQA.pth", where=HUB_CHECKPOINTS, load=True),
                 WeightSpec("regressor_koniq10k.pth", load=True)),
        licence="CC BY-NC 4.0 (ARNIQA)", paper_name="ARNIQA",
        note="built by iqprior: the ResNet-50 ImageNet file pyiqa fetches is fully overwritten by "
             "ARNIQA.pth, so it is not needed"),
    MetricSpec(
        "qalign", pyiqa_name="qalign", score_range=(1.0, 5.0), differentiable=False,
        weights=(WeightSpec("q-future/one-align", where=HF),), licence="see q-future/one-align",
        paper_name="Q-Align", remote_code="q-future/one-align",
        note="mPLUG-Owl2 based, about 16 GB, fp16, batch 1; scoring only; runs the hub repo's code: only with "
             "--trust-remote-code COMMIT"),
    MetricSpec(
        "uranker", pyiqa_name="uranker", score_range=(-1.0, 2.0),
        weights=(WeightSpec("URanker_ckpt-450eb36d.pth", load=True),),
        create_kwargs=dict(pretrained=False), licence="CC BY-NC 4.0 (UnderwaterRanker)", paper_name="URanker",
        note="underwater image ranker (paper Table 6)"),
    MetricSpec(
        "niqe", backend="iqprior.scoring.niqe:NIQE", lower_better=True, score_range=(0.0, 15.0),
        differentiable=False, weights=(WeightSpec("niqe_pris_params.npz", where=BASICSR, load=True),),
        licence="Apache-2.0 (basicsr's parameters, from the authors' MATLAB release; our implementation)",
        paper_name="NIQE",
        note="Mittal et al. 2013, published pristine model (ships inside basicsr, no download); Y channel, "
             "96 px blocks: images need at least 96x96; matches basicsr's calculate_niqe within 1e-3"),
    MetricSpec(
        "brisque", backend="iqprior.scoring.brisque:BRISQUE", lower_better=True, score_range=(0.0, 100.0),
        differentiable=False,
        weights=(WeightSpec("brisque_model_live.yml", where=OPENCV_DATA, load=True),
                 WeightSpec("brisque_range_live.yml", where=OPENCV_DATA, load=True)),
        licence="Apache-2.0 / BSD-3-Clause (OpenCV contrib's LIVE model; our implementation)", paper_name="BRISQUE",
        note="Mittal et al. 2012, the LIVE SVR as OpenCV contrib ships it (Debian: apt-get install opencv-data); "
             "8-bit grey; matches OpenCV's QualityBRISQUE within 1e-3 (relative, 1e-3 absolute below 1)"),
    MetricSpec(
        "piqe", pyiqa_name="piqe", lower_better=True, score_range=(0.0, 100.0), differentiable=False,
        licence="pyiqa (PolyForm NC)", note="hand-crafted, no weights"),
    MetricSpec(
        "entropy", backend="iqprior.scoring.entropy:Entropy", pyiqa_name="entropy", score_range=(0.0, 8.0),
        differentiable=False, licence="pyiqa (PolyForm NC)",
        note="hand-crafted, no weights; pyiqa's scores bit for bit, its histogram by bincount "
             "instead of a one-hot per pixel (about 1000x faster)"),
    MetricSpec(
        "uiqm", backend="iqprior.scoring.underwater:UIQM", score_range=(0.0, 5.0),
        licence="Apache-2.0 (our implementation)", paper_name="UIQM",
        note="Panetta et al. 2016; hand-crafted underwater metric"),
    MetricSpec(
        "uciqe", backend="iqprior.scoring.underwater:UCIQE", score_range=(0.0, 1.0),
        licence="Apache-2.0 (our implementation)", paper_name="UCIQE",
        note="Yang & Sowmya 2015; hand-crafted underwater metric"),
    MetricSpec(
        "blur_effect", backend="iqprior.scoring.sharpness:BlurEffect", lower_better=True, score_range=(0.0, 1.0),
        licence="Apache-2.0 (our implementation)",
        note="Crete-Roffet et al. 2007 no-reference blur measure (re-blur ratio); ours, no weights; tracks "
             "blur and JPEG detail loss, reads noise as detail"),
    MetricSpec(
        "blockiness", backend="iqprior.scoring.blockiness:Blockiness", lower_better=True, score_range=(1.0, 4.0),
        licence="Apache-2.0 (our implementation)",
        note="JPEG 8x8 blocking: boundary-to-interior gradient ratio (after Wang, Sheikh & Bovik 2002); ours, "
             "no weights; sees JPEG, not blur or noise"),
    # full reference: score against the ground truth (benchmark tables with --gt; paper Table 6)
    MetricSpec(
        "psnr", pyiqa_name="psnr", full_reference=True, score_range=(0.0, 50.0),
        licence="pyiqa (PolyForm NC)", paper_name="PSNR", note="RGB, pyiqa's default; no weights"),
    MetricSpec(
        "ssim", pyiqa_name="ssim", full_reference=True, score_range=(0.0, 1.0),
        licence="pyiqa (PolyForm NC)", paper_name="SSIM", note="Y channel, pyiqa's default; no weights"),
    MetricSpec(
        "lpips", pyiqa_name="lpips", full_reference=True, lower_better=True, score_range=(0.0, 1.0),
        weights=(WeightSpec("alexnet-owt-7be5be79.pth", where=HUB_CHECKPOINTS),
                 WeightSpec("LPIPS_v0.1_alex-df73285e.pth", load=True)),
        licence="BSD-2-Clause (LPIPS), BSD-3-Clause (torchvision AlexNet)",
        note="Zhang et al. 2018, AlexNet v0.1; torchvision loads the AlexNet trunk, iqprior the linear layers"),
]}

#: ``offline``: the published NR-IQA models that need no download (NIQE's pristine model inside basicsr,
#: BRISQUE's LIVE SVR from the system's OpenCV data); both lower-is-better, flipped when normalised.
#: The paper's ensemble (Sec. 4, "Implementation Details"): MUSIQ-GFIQA, TOPIQ-GFIQA and Q-Align.
#: pyiqa has no MUSIQ trained on GFIQA; ``topiq_nr-face`` (CGFIQA) stands in for it. Q-Align
#: needs ~16 GB and is optional: ``create_scorer("paper")`` includes it only when its weights are
#: on disk (see :func:`iqprior.scoring.preset_members`).
PRESETS: dict[str, tuple[str, ...]] = {
    "paper": ("topiq_nr-face-v1", "topiq_nr-face", "qalign"),
    "offline": ("niqe", "brisque"),
    "underwater": ("uiqm", "uciqe"),
}
OPTIONAL_IN_PRESET = {"paper": ("qalign",)}


def get_spec(name: str) -> MetricSpec:
    """The spec of metric ``name``, with a "did you mean" hint for unknown names."""
    if name in SPECS:
        return SPECS[name]
    import difflib
    close = difflib.get_close_matches(name, list(SPECS), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(f"unknown IQA member {name!r}{hint} (known: {', '.join(SPECS)})")
