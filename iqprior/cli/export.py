"""``iqprior export --model M --checkpoint C --out FILE.onnx``: an adapter as an ONNX file.

Inputs ``image`` (B, 3, H, W) float32 in [0, 1] and, for a model that takes a
level, ``level`` (B,) int64; controls (CodeFormer's ``fidelity``) are optional
inputs defaulting to the model's value; output ``output``. Before reporting
success the file is checked (``onnx.checker``) and run once in onnxruntime
against PyTorch at levels 0 and 9; the max difference is printed. See
docs/export.md and :func:`iqprior.export.export_onnx`.
"""
from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export", help="export an adapter to ONNX (level and controls stay inputs)",
        description="Export a registered adapter to an ONNX file whose inputs are image (B,3,H,W) in [0,1] and "
                    "level (B,) int64, checked against PyTorch before success is reported.")
    p.add_argument("--model", required=True, help="adapter name, e.g. codeformer+ (see adapters.list_adapters())")
    p.add_argument("--checkpoint", default=None,
                   help="official file, a save_pretrained directory, or 'official'; default: random weights "
                        "(recorded in the file's metadata)")
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--size", default=None, metavar="N|HxW",
                   help="fixed input size; default: the native size of face models (the only one they take), "
                        "dynamic height and width for image models")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset, 18..20 (default 18)")
    p.add_argument("--precision", choices=("fp32", "fp16"), default="fp32",
                   help="fp16: weights and compute in float16 (opt-in; inputs/output stay float32); the check "
                        "reports its deviation from fp32 PyTorch")
    p.add_argument("--fidelity", type=float, default=None,
                   help="CodeFormer's w: the default value of the file's fidelity input (model default 0.5)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="extra adapter option (VALUE parsed as JSON when possible); repeatable")
    p.add_argument("--no-verify", action="store_true", help="skip the onnx.checker / onnxruntime check")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import adapters

    from ..argument_checks import check_checkpoint, parse_options
    from ..export.onnx_export import DEFAULT_OPSET, check_opset, check_out_file, export_onnx, export_refusal, parse_size
    from ..export.onnx_file import ExportError, require_onnx, require_onnxruntime

    # every argument is checked before the model is built or anything is written
    out = Path(args.out)
    check_out_file(out)
    size = parse_size(args.size)
    opset = check_opset(DEFAULT_OPSET if args.opset is None else args.opset)
    if args.fidelity is not None and not 0.0 <= args.fidelity <= 1.0:
        raise ValueError(f"--fidelity must lie in [0, 1], got {args.fidelity}")
    check_checkpoint(args.checkpoint)
    spec = adapters.spec(args.model)  # unknown names: the registry's "did you mean"
    refusal = export_refusal(args.model)
    if refusal:
        raise ExportError(f"{args.model} cannot be exported to ONNX: {refusal}")
    if size is not None and spec.native_size is not None and size != (spec.native_size, spec.native_size):
        n = spec.native_size
        raise ValueError(f"{args.model} works at its native size {n}x{n} only; drop --size or pass {n}")
    require_onnx()
    if not args.no_verify:
        require_onnxruntime()
    options = parse_options(args.option)
    options.setdefault("fidelity", args.fidelity)
    model = adapters.create(args.model, checkpoint=args.checkpoint, **options)
    if args.checkpoint is None:
        print(f"note: {args.model} has random weights (no --checkpoint); the file says so in its metadata",
              file=sys.stderr)
    report = export_onnx(model, out, size=size, opset=opset, precision=args.precision,
                         random_weights=args.checkpoint is None, verify=not args.no_verify)
    print(report.summary())
    return 0
