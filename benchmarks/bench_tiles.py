"""Tiled restore: speed against the loop users run today, peak memory tiled vs untiled.

``speed``: on one image, per round (calls interleaved, order reversed every round, after one warm-up):

- ``iqprior``: :func:`iqprior.tiling.restore_tiled` on ``adapters.create("auto", checkpoint=FILE)``
  (its default fast path), uint8 in, uint8 canvas out;
- ``loop``: spandrel's network for the same file (state dict read by iqprior's safe reader, then
  ``spandrel.ModelLoader().load_from_state_dict``, as chaiNNer loads it) driven by the plain tiling loop
  chaiNNer / ComfyUI use (``comfy.utils.tiled_scale``'s scheme, written here: tiles of ``--tile`` at a
  stride of ``tile - overlap``, cut short at the border, each multiplied by a feather mask ramping over
  ``overlap`` output pixels and summed with the mask into full-size float32 buffers, then divided);
- ``onnx``: the same file exported (``iqprior.export.export_onnx``, dynamic size) and run by
  :class:`iqprior.export.OnnxModel` through :func:`iqprior.tiling.restore_tiled`.

Reports seconds (median), ``loop / iqprior`` and ``loop / onnx`` speed ratios (median and range of the
per-round ratios) and the largest difference between the outputs in 1/255 steps.

``memory``: one subprocess per run of ``iqprior restore`` (tiled, then untiled), its peak RSS from
``os.wait4``; the large size runs untiled too with ``--untiled-big`` (slow: the whole image in one forward).
The process alone (Python, torch, the model) is about 1 GiB of it and varies by ~0.2 GiB between runs on a
loaded machine (shared-library pages counted or not).

    python benchmarks/bench_tiles.py speed --checkpoint realesr-animevideov3.pth --image coffee \
        --tile 512 --overlap 32 --rounds 3 --threads 2
    python benchmarks/bench_tiles.py memory --checkpoint realesr-animevideov3.pth --size 2000x1500 \
        --untiled-sizes 250x188,500x375 --tile 512 [--untiled-big]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from iqprior.bench.profiling import interleaved, medians, ratio_stats  # noqa: E402


def photo(name: str, size: str | None = None) -> np.ndarray:
    """A scikit-image bundled photo (RGB uint8), optionally resized (bicubic) to ``WxH``."""
    import cv2
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, 2)
    img = np.ascontiguousarray(img[:, :, :3])
    if size:
        w, h = (int(v) for v in size.split("x"))
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC)
    return img


def plain_loop(net, image: np.ndarray, scale: int, tile: int, overlap: int) -> np.ndarray:
    """The chaiNNer/ComfyUI tiling loop: cut-short tiles, feathered, full-size float accumulation."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    _, c, h, w = x.shape
    out = torch.zeros(1, c, h * scale, w * scale)
    div = torch.zeros(1, 1, h * scale, w * scale)
    feather = overlap * scale
    for y0 in range(0, h, tile - overlap):
        y0 = max(0, min(h - overlap, y0))
        for x0 in range(0, w, tile - overlap):
            x0 = max(0, min(w - overlap, x0))
            patch = x[:, :, y0:y0 + tile, x0:x0 + tile]
            with torch.no_grad():
                ps = net(patch).float()
            mask = torch.ones(1, 1, ps.shape[2], ps.shape[3])
            for t in range(feather):
                a = (t + 1) / feather
                mask[:, :, t, :] *= a
                mask[:, :, ps.shape[2] - 1 - t, :] *= a
                mask[:, :, :, t] *= a
                mask[:, :, :, ps.shape[3] - 1 - t] *= a
            ys, xs = y0 * scale, x0 * scale
            out[:, :, ys:ys + ps.shape[2], xs:xs + ps.shape[3]] += ps * mask
            div[:, :, ys:ys + ps.shape[2], xs:xs + ps.shape[3]] += mask
    y = (out / div).clamp(0, 1)
    return (y[0] * 255).round().byte().permute(1, 2, 0).numpy()


def speed(args) -> dict:
    import adapters
    from adapters.auto.reading import read_state_dict
    from iqprior.tiling import restore_tiled
    from iqprior.tiling.files import tile_align, tile_multiple
    from iqprior.weights import resolve

    torch.set_num_threads(args.threads)
    path = Path(args.checkpoint) if Path(args.checkpoint).is_file() else resolve(args.checkpoint, download_missing=False)
    model = adapters.create("auto", checkpoint=str(path)).eval()
    from spandrel import ModelLoader

    state = read_state_dict(path)
    if all(k.startswith("params.") for k in state):  # the released .pth's {"params": ...}, flattened
        state = {k[len("params."):]: v for k, v in state.items()}
    desc = ModelLoader().load_from_state_dict(state).eval()
    net = desc.model.float().eval()
    img = photo(args.image, args.resize)
    kw = dict(multiple=tile_multiple(model), align=tile_align(model))
    fns = {"iqprior": lambda: restore_tiled(model, img, args.tile, args.overlap, **kw),
           "loop": lambda: plain_loop(net, img, desc.scale, args.tile, args.overlap)}
    onnx_file = None
    if not args.no_onnx:
        from iqprior.export import OnnxModel, export_onnx

        onnx_file = Path(tempfile.mkdtemp()) / "model.onnx"
        export_onnx(model, onnx_file, verify=False)
        onnx = OnnxModel(onnx_file, threads=args.threads)
        fns["onnx"] = lambda: restore_tiled(onnx, img, args.tile, args.overlap, **kw)
    outs = {k: f() for k, f in fns.items()}
    with torch.no_grad():  # the untiled result, for reference (not timed)
        full = model(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)[0]
    untiled = (full.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    times = interleaved(fns, args.rounds, warmup=0)
    med = medians(times)
    res = {"image": f"skimage.data.{args.image}" + (f" resized to {args.resize}" if args.resize else ""),
           "size": list(img.shape[:2]), "checkpoint": str(args.checkpoint), "architecture": model.architecture,
           "scale": model.scale, "tile": args.tile, "overlap": args.overlap, "threads": args.threads,
           "rounds": args.rounds, "seconds": med, "times": times}
    for k in fns:
        res[f"max_diff_{k}_vs_untiled"] = int(np.abs(outs[k].astype(int) - untiled).max())
        res[f"mean_diff_{k}_vs_untiled"] = float(np.abs(outs[k].astype(int) - untiled).mean())
        if k != "loop":
            r = ratio_stats(times["loop"], times[k])
            res[f"loop/{k}"] = {"median": r[0], "min": r[1], "max": r[2]}
            res[f"max_diff_{k}_vs_loop"] = int(np.abs(outs[k].astype(int) - outs["loop"]).max())
            res[f"mean_diff_{k}_vs_loop"] = float(np.abs(outs[k].astype(int) - outs["loop"]).mean())
    return res


def _run(cmd: list[str]) -> tuple[float, int, int]:
    """Seconds, peak RSS (bytes) and exit status of ``cmd`` in a subprocess."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(ARGS.threads)})
    _, status, usage = os.wait4(p.pid, 0)
    err = p.stderr.read().decode()[-300:] if status else ""
    if status:
        print(err, file=sys.stderr)
    return time.perf_counter() - t, usage.ru_maxrss * 1024, status


def memory(args) -> dict:
    import cv2

    tmp = Path(tempfile.mkdtemp())
    base = [sys.executable, "-m", "iqprior", "restore", "--model", "auto", "--checkpoint", args.checkpoint,
            "--device", "cpu", "--no-progress"]
    rows = []
    sizes = [(s, False) for s in args.untiled_sizes.split(",") if s] + [(args.size, True)]
    for size, big in sizes:
        src = tmp / f"photo_{size}.png"
        cv2.imwrite(str(src), photo(args.image, size)[:, :, ::-1])
        for tiled in ((True, False) if not big or args.untiled_big else (True,)):
            flags = ["--tile", str(args.tile), "--tile-overlap", str(args.overlap)] if tiled else []
            out = tmp / f"out_{size}_{tiled}"
            secs, rss, status = _run(base + [str(src), "--out", str(out), *flags])
            rows.append({"size": size, "tiled": tiled, "seconds": round(secs, 1), "peak_rss_mib": rss / 2**20,
                         "status": status})
            print(json.dumps(rows[-1]), flush=True)
    return {"checkpoint": args.checkpoint, "image": f"skimage.data.{args.image}", "tile": args.tile,
            "overlap": args.overlap, "threads": args.threads, "runs": rows}


def main() -> None:
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("speed", "memory"))
    p.add_argument("--checkpoint", default="realesr-animevideov3.pth")
    p.add_argument("--image", default="coffee", help="a scikit-image bundled photo (coffee, astronaut, chelsea)")
    p.add_argument("--resize", default=None, metavar="WxH", help="speed: resize the photo first")
    p.add_argument("--size", default="2000x1500", help="memory: the large size (WxH)")
    p.add_argument("--untiled-sizes", default="250x188,500x375", help="memory: sizes run untiled too")
    p.add_argument("--untiled-big", action="store_true", help="memory: run the large size untiled as well")
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--overlap", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-onnx", action="store_true")
    p.add_argument("--out", default=None, help="write the JSON result here too")
    ARGS = p.parse_args()
    res = speed(ARGS) if ARGS.what == "speed" else memory(ARGS)
    text = json.dumps(res, indent=1)
    print(text)
    if ARGS.out:
        Path(ARGS.out).write_text(text)


if __name__ == "__main__":
    main()
