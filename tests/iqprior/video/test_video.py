"""``iqprior restore clip.mp4``: frame count, rate, duration and audio packets kept; killed and resumed,
the same clip; unreadable files are one line; faces that come and go are not errors."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

from iqprior.cli import main  # noqa: E402
from iqprior.video import decode_frames, open_clip, work_folder  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
MODEL = ["--model", "auto", "--option", "tiny=true", "--option", "tiny_family=Compact"]
RATE = 24


def make_clip(path, frames: int = 12, w: int = 48, h: int = 32):
    """An H.264 clip with a moving bar and an AAC tone as long as the video."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=RATE)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        a = c.add_stream("aac", rate=22050)
        a.layout = "mono"
        for i in range(frames):
            img = np.zeros((h, w, 3), np.uint8)
            img[..., 0] = 20 * i % 256
            img[:, : (4 * i) % w, 1] = 200
            for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        t = np.arange(int(22050 * frames / RATE)) / 22050
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        for k in range(0, tone.shape[1], 1024):
            f = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, k:k + 1024]), format="fltp", layout="mono")
            f.sample_rate = 22050
            for p in a.encode(f):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    return path


def audio_packets(path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.dts is not None]


def durations(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return v.duration * v.time_base, v.frames, v.average_rate


def test_round_trip_keeps_frames_rate_duration_and_audio(tmp_path, capsys):
    clip = make_clip(tmp_path / "clip.mp4")
    out = tmp_path / "out"
    assert main(["restore", str(clip), *MODEL, "--out", str(out), "--tile", "32", "--tile-overlap", "8"]) == 0
    err = capsys.readouterr().err
    assert "frame/s" in err  # the progress bar's rate
    res = out / "clip.mp4"
    a, b = open_clip(clip), open_clip(res)
    assert (b.frames, b.rate, b.size) == (a.frames, a.rate, (96, 64)) and b.audio
    assert durations(res) == durations(clip)
    assert audio_packets(res) == audio_packets(clip) and len(audio_packets(clip)) > 5
    assert not work_folder(res).exists()
    n = sum(1 for _ in decode_frames(res))
    assert n == 12


def test_unreadable_video_is_one_line_and_batch_goes_on(tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    good = make_clip(tmp_path / "good.mp4", frames=3)
    rc = main(["restore", str(bad), str(good), *MODEL, "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "bad.mp4 cannot be read as a video" in err and "1 error" in err
    assert (tmp_path / "o" / "good.mp4").is_file()


def test_killed_and_resumed_gives_the_same_clip(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=24, w=64, h=48)
    ref_dir = tmp_path / "ref"
    assert main(["restore", str(clip), *MODEL, "--out", str(ref_dir), "--no-progress"]) == 0
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "iqprior", "restore", str(clip), *MODEL, "--out", str(out), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = work_folder(out / "clip.mp4")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and len(list(work.glob("*.png"))) < 2:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    done = len(list(work.glob("*.png")))
    assert 0 < done < 24 and not (out / "clip.mp4").exists()  # killed mid-way
    assert main(["restore", str(clip), *MODEL, "--out", str(out), "--no-progress"]) == 0
    got = [f for _, f in decode_frames(out / "clip.mp4")]
    ref = [f for _, f in decode_frames(ref_dir / "clip.mp4")]
    assert len(got) == len(ref) == 24 and all(np.array_equal(a, b) for a, b in zip(got, ref))
    assert (out / "clip.mp4").read_bytes() == (ref_dir / "clip.mp4").read_bytes()


def test_face_model_frames_without_faces_are_copied(tmp_path):
    """Detection runs per frame; a frame where the face has gone is copied through, not an error."""
    from argparse import Namespace

    from iqprior.cli.restore_large import frame_function
    from iqprior.faces.restorer import Restorer

    class Pipeline:  # stands in for the detector: a "face" in even frames only
        calls = 0

        def restore(self, image, restore_faces):
            Pipeline.calls += 1
            if Pipeline.calls % 2:
                return image, 0
            return restore_faces(image[None, :, :32, :32])[0].new_zeros(image.shape), 1

    class Face:
        task, native_size, adapter_name = "face", 32, "face"

        def __call__(self, x, score=None):
            return x * 0

    restorer = Restorer(Face(), pipeline=Pipeline())
    args = Namespace(tile=None, color_fix="none", tile_overlap=32)
    guard = type("G", (), {"begin": lambda self: None})()
    run = frame_function(Face(), restorer, args, 9, "cpu", False, None, guard)
    frame = (np.random.default_rng(0).random((40, 48, 3)) * 255).astype(np.uint8)
    assert np.array_equal(run(frame), frame) and not run(frame).any()
    assert torch.is_grad_enabled()
