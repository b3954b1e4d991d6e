"""Tiled inference: the layout, equality with the untiled run, window alignment, the memory budget, the CLI."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import adapters
from iqprior.cli import main
from iqprior.tiling import axis_layout, choose_tile, parse_memory, restore_tiled
from iqprior.tiling.files import tile_align, tile_multiple


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur((rng.random((h, w, 3)) * 255).astype(np.uint8), (0, 0), 1.5)


def _untiled(model, img: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        y = model(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)[0]
    return (y.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


@pytest.mark.parametrize("length,tile,overlap,align", [(230, 64, 32, 1), (1000, 512, 32, 1), (97, 48, 16, 8), (600, 512, 32, 1),
                                                       (64, 64, 32, 1), (65, 64, 32, 1)])
def test_layout_covers_and_overlaps(length, tile, overlap, align):
    ax = axis_layout(length, tile, overlap, align)
    assert ax.starts[0] == 0 and ax.ends[-1] == length
    assert all(s % align == 0 for s in ax.starts) and max(e - s for s, e in zip(ax.starts, ax.ends)) <= tile + align
    assert len({e - s for s, e in zip(ax.starts[:-1], ax.ends)}) <= 1  # one tile size
    for i in range(len(ax) - 1):
        assert ax.ends[i] - ax.starts[i + 1] >= overlap  # neighbours share at least the overlap
        a, b = ax.span(i)
        assert ax.starts[i] <= a and b <= ax.ends[i]  # a tile only contributes where it has pixels
        assert b - ax.seams[i] == ax.half and ax.span(i + 1)[0] == ax.seams[i] - ax.half


@pytest.mark.parametrize("family", ["Compact", pytest.param("ESRGAN", marks=pytest.mark.slow), "SwinIR"])
def test_tiled_equals_untiled(family):
    """Conv models whose receptive field is inside the overlap: equal within 1/255; SwinIR (windows of 4
    here) too once tiles start on window boundaries."""
    model = adapters.create("auto", tiny=True, tiny_family=family).eval()
    img = _image(48, 72)
    ref = _untiled(model, img)
    seen = []

    def record(x, score=None):
        seen.append(tuple(x.shape[-2:]))
        return model(x, score=score)

    out = restore_tiled(record, img, 40, 16, multiple=tile_multiple(model), align=tile_align(model))
    assert out.shape == ref.shape == (48 * model.scale, 72 * model.scale, 3)
    assert len(seen) >= 2 and all(h <= 40 + 4 and w <= 40 + 4 for h, w in seen)  # tiles, not the whole image
    assert np.abs(out.astype(int) - ref).max() <= 1
    bgr = restore_tiled(model, np.ascontiguousarray(img[:, :, ::-1]), 40, 16, order="bgr",
                        multiple=tile_multiple(model), align=tile_align(model))
    assert np.array_equal(bgr[:, :, ::-1], out)


def test_overlap_too_small_for_the_receptive_field_shows():
    """The check can fail: a 1-px overlap on a model with a 5-px receptive field differs at the seams."""
    model = adapters.create("auto", tiny=True, tiny_family="Compact").eval()
    img = _image(40, 60)
    out = restore_tiled(model, img, 32, 0)
    assert np.abs(out.astype(int) - _untiled(model, img)).max() > 1


def test_bad_tile_arguments():
    model = adapters.create("auto", tiny=True, tiny_family="Compact").eval()
    with pytest.raises(ValueError, match="twice the overlap"):
        restore_tiled(model, _image(64, 64), 40, 32)
    with pytest.raises(ValueError, match="uint8"):
        restore_tiled(model, _image(64, 64).astype(np.float32), 64, 16)


def test_memory_budget():
    model = adapters.create("auto", tiny=True, tiny_family="Compact").eval()
    assert parse_memory("1.5G") == int(1.5 * 2**30) and parse_memory("800M") == 800 * 2**20
    with pytest.raises(ValueError, match="--max-memory"):
        parse_memory("lots")
    assert choose_tile(model, 2**30, 200, 300, 32, base=0) is None  # fits untiled
    per_pixel = (1000.0, 2)
    tile = choose_tile(model, 50 * 2**20, 400, 600, 32, base=0, probe_fn=lambda: per_pixel)
    fixed = 400 * 600 * 3 * 5 + 3 * 16 * 2 * 600 * 2 * 4
    assert tile >= 64 and tile**2 * 1000 <= 50 * 2**20 - fixed < (tile + 1) ** 2 * 1000
    with pytest.raises(ValueError, match="too small"):
        choose_tile(model, 4 * 2**20, 400, 600, 32, base=0, probe_fn=lambda: per_pixel)


def test_cli_tiles_equal_untiled_and_fp32_fallback_summary(tmp_path, capsys):
    src = tmp_path / "img.png"
    cv2.imwrite(str(src), _image(90, 140))
    base = ["--model", "auto", "--option", "tiny=true", "--option", "tiny_family=Compact", "--no-progress"]
    assert main(["restore", str(src), "--out", str(tmp_path / "t"), "--tile", "64", *base]) == 0
    assert main(["restore", str(src), "--out", str(tmp_path / "u"), *base]) == 0
    a, b = (cv2.imread(str(tmp_path / d / "img.png")).astype(int) for d in "tu")
    assert a.shape == (180, 280, 3) and np.abs(a - b).max() <= 1
    assert main(["restore", str(src), "--out", str(tmp_path / "m"), "--max-memory", "64G", *base]) == 0
    assert main(["restore", str(src), "--out", str(tmp_path / "x"), "--tile", "64", "--max-memory", "1G", *base]) == 1
    assert "not both" in capsys.readouterr().err
