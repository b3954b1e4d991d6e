"""``iqprior restore INPUT... --model NAME --out DIR``: restore images with any registered adapter.

Face models (``task == "face"``): ``--aligned`` inputs are resized to the
model's size (512) and restored in batches; other inputs go through the
whole-image face pipeline (:mod:`iqprior.faces`: detect, align, restore, paste
back). Image models (``task == "image"``, e.g. underwater) process each whole
image at its own size. Outputs are PNGs written atomically; existing outputs
are skipped (re-running resumes); a failing file is reported and the batch
goes on; an image without a face is copied through and reported.

``--onnx FILE`` runs an exported file (``iqprior export``) with onnxruntime
instead of ``--model``: the same loop (:class:`iqprior.faces.restorer.Restorer` takes
either, see :class:`iqprior.faces.restorer.Runner`), so the same resizing, face
pipeline, NaN checks, atomic writes and resuming; what the loop needs (task,
size, levels) comes from the file's metadata.

``--sweep 0..9`` writes, per input, one labelled grid of the result at every
level (the paper's Fig. 13) instead of single outputs.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional

from .checks import add_precision_flag
from .restore_large import add_arguments as add_large_arguments

# faces per forward pass: on CPU batch 4 was measured slower than batch 1 (docs/experiments/speed.md)
DEFAULT_BATCH = {"cpu": 1, "cuda": 4}


def add_parser(sub) -> None:
    p = sub.add_parser(
        "restore", help="restore faces or whole images with an adapter (codeformer+, puienet+, ...)",
        description="Restore images with a registered adapter. Face models restore aligned crops (--aligned) or "
                    "detect, align and paste back the faces of whole photos; image models process whole images.")
    p.add_argument("inputs", nargs="+", help="image and video files and/or folders (searched recursively); a "
                                            "video is restored frame by frame into the same container, audio kept")
    p.add_argument("--model", default=None, help="adapter name, e.g. codeformer+ (see adapters.list_adapters())")
    p.add_argument("--onnx", default=None, metavar="FILE",
                   help="run this ONNX file (`iqprior export`) with onnxruntime instead of --model; same "
                        "pre/post-processing, face pipeline and outputs")
    p.add_argument("--threads", type=int, default=None, help="--onnx: onnxruntime threads (default: its own)")
    p.add_argument("--checkpoint", default=None,
                   help="official file, a save_pretrained directory, or 'official' (weights registry); "
                        "default: random weights (for pipeline checks only)")
    p.add_argument("--score", default="9", help="condition level 0..9 (int) or score in [0, 1] (float); default 9")
    p.add_argument("--aligned", action="store_true", help="inputs are aligned face crops: resize and restore")
    p.add_argument("--fidelity", type=float, default=None, help="CodeFormer's w in [0, 1] (model default 0.5)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="extra adapter option (VALUE parsed as JSON when possible); repeatable")
    p.add_argument("--batch-size", type=int, default=None,
                   help="faces per forward pass (default: 1 on CPU, where batching was measured slower, 4 on CUDA)")
    p.add_argument("--exact", action="store_true",
                   help="the model's exact (upstream-identical) path instead of its fast path (differences < 1e-4)")
    add_precision_flag(p, "the model")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model: a slow first call, worth it for many faces or DifFace's steps")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--upscale", type=float, default=1, help="whole photos: output scale (default 1)")
    p.add_argument("--only-center-face", action="store_true", help="whole photos: restore only the central face")
    p.add_argument("--detector", choices=["auto", "retinaface", "mtcnn"], default="auto",
                   help="whole photos: face detector (auto: facexlib's RetinaFace if its weights are on disk, "
                        "else MTCNN, installed offline by `make install`)")
    p.add_argument("--faces", action="store_true",
                   help="run an image model (e.g. Real-ESRGAN) on the aligned faces of whole photos: detect, "
                        "align, restore, paste back")
    p.add_argument("--sweep", default=None, metavar="LEVELS",
                   help="write one comparison grid per input with the result at these levels "
                        "(0..9, 0-9 or 2,5,9)")
    add_large_arguments(p)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--debug", action="store_true", help="raise errors with a traceback")
    p.set_defaults(run=run)


def parse_options(items: list[str]) -> dict[str, Any]:
    """``["k=v", ...]`` -> dict; values parsed as JSON when they parse, else kept as strings."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--option expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out


def parse_score(text: str):
    """``"9"`` -> level 9 (int); ``"0.93"`` -> score 0.93 (float); out of range is a ``ValueError``."""
    from ..levels import parse_condition

    return parse_condition(text, flag="--score")


def parse_sweep(text: str) -> list[int]:
    """``"0..9"`` or ``"0-9"`` -> [0, ..., 9]; ``"2,5,9"`` -> [2, 5, 9] (see :func:`iqprior.levels.parse_levels`)."""
    from ..levels import parse_levels

    return parse_levels(text, flag="--sweep")


def collect_inputs(inputs: list[str]) -> list[Path]:
    from ..io import list_images

    files: list[Path] = []
    for item in inputs:
        files += list_images(item)
    seen: set[Path] = set()
    return [f for f in files if not (f.resolve() in seen or seen.add(f.resolve()))]


def _output_name(path: Path, used: dict[str, int]) -> str:
    stem = path.stem
    n = used.get(stem, 0)
    used[stem] = n + 1
    return stem if n == 0 else f"{stem}_{n}"


def build_model(args: argparse.Namespace, device):
    """What the restore loop calls (a :class:`iqprior.faces.restorer.Runner`): the adapter ``--model``
    in PyTorch, or the exported file ``--onnx`` in onnxruntime (:class:`iqprior.export.OnnxModel`)."""
    from .checks import check_checkpoint, check_positive

    if (args.model is None) == (args.onnx is None):
        raise ValueError("give --model NAME (PyTorch) or --onnx FILE (an `iqprior export` file), one of the two")
    check_positive(args.threads, "--threads")
    options = parse_options(args.option)
    if args.onnx is not None:
        from ..export.runner import OnnxModel

        flags = {"--checkpoint": args.checkpoint, "--option": options or None, "--exact": args.exact or None,
                 "--compile": args.compile or None,
                 "--precision": None if args.precision == "fp32" else args.precision}
        bad = [k for k, v in flags.items() if v is not None]
        if bad:
            raise ValueError(f"{', '.join(bad)} do(es) not apply to --onnx (the file fixes weights and precision; "
                             f"`iqprior export` sets them)")
        model = OnnxModel(args.onnx, threads=args.threads)
        if args.fidelity is not None:
            model.set_controls(fidelity=args.fidelity)
        return model
    import adapters

    check_checkpoint(args.checkpoint)
    if args.model not in adapters.list_adapters():
        adapters.spec(args.model)  # raises the registry's "unknown adapter ... did you mean" error
    options.setdefault("fidelity", args.fidelity)
    options.setdefault("exact", args.exact or None)
    options.setdefault("precision", None if args.precision == "fp32" else args.precision)
    model = adapters.create(args.model, checkpoint=args.checkpoint, **options).to(device)
    if args.compile:
        model.compile_for_inference()
    return model


def run(args: argparse.Namespace) -> int:
    from ..distributed import resolve_device
    from ..faces.restorer import Restorer
    from ..io import check_finite, read_image, write_image
    from . import restore_large as large
    from .checks import check_out, check_positive

    # every argument is checked before any model is built or any file written
    image_inputs, videos = large.split_videos(args.inputs)
    files = collect_inputs(image_inputs) if image_inputs else []
    if not files and not videos:
        raise ValueError(f"no images or videos found in {args.inputs}")
    budget = large.check_arguments(args)
    if args.upscale <= 0:
        raise ValueError(f"--upscale must be > 0, got {args.upscale}")
    if args.fidelity is not None and not 0.0 <= args.fidelity <= 1.0:
        raise ValueError(f"--fidelity must lie in [0, 1], got {args.fidelity}")
    score = parse_score(args.score)
    levels = parse_sweep(args.sweep) if args.sweep else None
    device = resolve_device(args.device)
    if args.batch_size is None:
        args.batch_size = DEFAULT_BATCH.get(device.type, 1)
    check_positive(args.batch_size, "--batch-size")
    check_out(args.out, "--out")
    model = build_model(args, device)
    name = model.adapter_name
    if getattr(model, "random_weights", args.checkpoint is None):
        print(f"note: {name} has random weights (no --checkpoint): outputs are meaningless", file=sys.stderr)
    if levels is not None and not model.takes_level:
        print(f"note: {name} is not conditioned; every level gives the same image", file=sys.stderr)
    tiled = large.uses_tiles(args, model)
    runner, guard = large.wrap_model(model, args.color_fix, tiled)
    restorer = Restorer(runner, device, batch_size=args.batch_size, aligned=args.aligned,
                        upscale=args.upscale, only_center_face=args.only_center_face, detector=args.detector,
                        faces=args.faces)
    if restorer.task == "face" and not args.aligned:
        _ = restorer.pipeline  # build the face detector now: missing weights fail once, not per file
        print(f"faces: {restorer.describe()}", file=sys.stderr)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    names: dict[str, int] = {}
    jobs = [(f, out_dir / (_output_name(f, names) + ("_sweep.png" if levels else ".png"))) for f in files]
    todo = [(f, o) for f, o in jobs if args.overwrite or not o.exists()]
    skipped = len(jobs) - len(todo)
    done, failed, no_face = 0, [], []
    from tqdm import tqdm

    bar = tqdm(total=len(todo), desc=f"restore ({name})", unit="img", disable=args.no_progress)
    # aligned crops of a face model are batched across files; everything else goes one file at a time
    step = args.batch_size if restorer.batched_files and levels is None else 1
    for i in range(0, len(todo), step):
        chunk = todo[i:i + step]
        guard.begin()
        if tiled and levels is None:  # image models with --tile / --max-memory: uint8 in, tiles, uint8 out
            for f, o in chunk:
                try:
                    large.restore_image_file(runner, f, o, args, score, device, budget)
                    done += 1
                except Exception as e:
                    if args.debug:
                        raise
                    failed.append((f, e))
            bar.update(len(chunk))
            continue
        images, ok = [], []
        for f, o in chunk:
            try:
                images.append(read_image(f))
                ok.append((f, o))
            except Exception as e:  # unreadable file: report, go on
                failed.append((f, e))
                if args.debug:
                    raise
        try:
            if levels is not None:
                results = []
                for img in images:
                    by_level, n = restorer.sweep(img, levels)
                    results.append(((by_level, restorer.input_view(img)), n))
            else:
                results = restorer.restore(images, score)
        except Exception as e:
            if args.debug:
                raise
            failed += [(f, e) for f, _ in ok]
            results = []
        for (f, o), (img, n) in zip(ok, results):
            try:  # a NaN/Inf output (NaN weights, a broken input) is an error, never a written image
                if levels is not None:
                    for lv, y in img[0].items():
                        check_finite(y, f"the output at level {lv}")
                    _write_sweep(img[0], o, f, name, img[1], levels)
                else:
                    write_image(o, check_finite(img, "the output"))
            except Exception as e:
                if args.debug:
                    raise
                failed.append((f, e))
                continue
            if n == 0:
                no_face.append(f)
            done += 1
        bar.update(len(chunk))
    bar.close()
    if videos:
        done += large.restore_videos(videos, out_dir, lambda: large.frame_function(
            runner, restorer, args, score, device, tiled, budget, guard), args, name, failed)

    for f in no_face:
        print(f"no face found in {f}: copied through", file=sys.stderr)
    for f, e in failed:
        print(f"error: {f}: {type(e).__name__}: {e}", file=sys.stderr)
    print(f"restored {done} image(s), {skipped} already done, {len(no_face)} without a face, "
          f"{len(failed)} error(s)"
          + (f", {guard.fallbacks} redone in fp32 (NaN/Inf in {guard.precision})" if guard.fallbacks else "")
          + f" -> {out_dir}", file=sys.stderr)
    return 1 if failed else 0


def _write_sweep(by_level: dict, out: Path, source: Path, model: str, input_image: Optional[Any],
                 levels: list[int]) -> None:
    from ..figures import level_sweep  # lazy: matplotlib
    from ..io import atomic_path
    from ..levels import format_levels

    title = f"{model}: {source.name}, levels {format_levels(levels)}"
    with atomic_path(out) as tmp:
        level_sweep(by_level, tmp.with_suffix(".png"), title=title, input_image=input_image)
        tmp.with_suffix(".png").replace(tmp)
