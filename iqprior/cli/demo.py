"""``iqprior demo [--model M --checkpoint C] [--host 127.0.0.1] [--port 7860]``: the local web app.

Without ``--model`` it serves the bundled real "+" model: Real-ESRGAN's
realesr-animevideov3 fine-tuned by ``iqprior bench real`` (``auto+``, needs
spandrel, the ``auto`` extra); without spandrel, the small "minires+"
(:mod:`iqprior.demo.recipe`). Gradio is imported in :func:`run` only
(the ``demo`` extra: ``pip install "iqprior[demo]"``).
"""
from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo", help="local web app: restore an image at a level 0..9 (slider, before/after, sweep, scores)",
        description="Start a Gradio app on this machine (analytics and share links off). Without --model it serves "
                    "Real-ESRGAN's realesr-animevideov3 made '+' by `iqprior bench real` (x4 super-resolution; the "
                    "small minires+ if spandrel is missing); API endpoints /restore(image, level) and "
                    "/sweep(image) for gradio_client.")
    p.add_argument("--model", default=None, help="adapter name, e.g. codeformer+ (default: the bundled realesr-animevideov3+)")
    p.add_argument("--checkpoint", default=None,
                   help="with --model: official file, save_pretrained directory or 'official' (default: random weights)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a --host other than loopback (127.0.0.1, ::1, localhost): anyone who reaches the "
                        "address can use the demo, with no login; a warning is printed")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--members", default="auto",
                   help="quality-score members shown next to each output: auto (default: the paper's members when "
                        "all their weights are on disk, else the no-download offline ones), a preset (offline, "
                        "paper) or comma-separated names")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise ValueError(f"--port must lie in 1..65535, got {args.port}")
    members = args.members if args.members in ("auto", "offline", "paper") else [m.strip() for m in args.members.split(",")
                                                                          if m.strip()]
    from ..demo.app import launch, offline_environment
    from ..demo.limits import check_host

    warning = check_host(args.host, args.allow_remote)  # before anything is built
    from ..demo.service import DemoService

    offline_environment()
    try:
        import gradio  # noqa: F401
    except ImportError as e:
        raise ImportError(f"iqprior demo needs gradio ({e}); pip install 'iqprior[demo]'") from None
    service = DemoService(args.model, args.checkpoint, device=args.device, members=members)
    service.model()          # a wrong --model/--checkpoint fails here, before the server starts
    _ = service.scorer       # and so does a wrong --members
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"iqprior demo: serving {service.choices[0].label} on http://{args.host}:{args.port} (Ctrl+C stops)")
    try:
        launch(service, host=args.host, port=args.port, block=True)
    finally:
        service.close()
    return 0
