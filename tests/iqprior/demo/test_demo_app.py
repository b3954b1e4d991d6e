"""``iqprior demo`` served on a free localhost port: ``gradio_client`` against ``/restore``, and a real browser.

The browser test drives Debian's headless Chromium (``/usr/bin/chromium``, installed by ``.ci/run``) through
Playwright (never ``playwright install``): upload a bundled image, set the level slider to 0 and 9, read both
outputs from the page and compare them with ``iqprior restore``; the screenshot goes to ``results/artifacts/``.
"""
from __future__ import annotations

import shutil
import socket
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("gradio")

from iqprior.cli import main  # noqa: E402
from iqprior.demo.service import BUNDLED_CHECKPOINT, BUNDLED_MODEL, DemoService  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "results" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SAMPLE = ROOT / "examples" / "data" / "faces" / "0143.png"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from iqprior.demo.app import launch

    # the small fallback model keeps these tests cheap (the default real model is tested in test_demo_service.py)
    service = DemoService(BUNDLED_MODEL, str(BUNDLED_CHECKPOINT), device="cpu", out_dir=tmp_path_factory.mktemp("demo-out"))
    port = _free_port()
    app = launch(service, host="127.0.0.1", port=port, block=False)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    """``iqprior restore`` of the sample at levels 0 and 9 with the bundled model: 8-bit RGB arrays."""
    out = {}
    for level in (0, 9):
        folder = tmp_path_factory.mktemp(f"cli{level}")
        assert main(["restore", str(SAMPLE), "--model", BUNDLED_MODEL, "--checkpoint", str(BUNDLED_CHECKPOINT),
                     "--score", str(level), "--device", "cpu", "--out", str(folder), "--no-progress"]) == 0
        out[level] = _decode((folder / f"{SAMPLE.stem}.png").read_bytes())
    assert not np.array_equal(out[0], out[9])
    return out


def _decode(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None, "not an image"
    return img


def test_gradio_client_restore_endpoint(served, expected, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(served, verbose=False, download_files=str(tmp_path), analytics_enabled=False)
    for level in (9, 0):
        path = client.predict(image=handle_file(str(SAMPLE)), level=level, api_name="/restore")
        assert np.array_equal(_decode(Path(path).read_bytes()), expected[level]), f"level {level}"
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not an image")
    with pytest.raises(Exception, match="not a decodable image"):
        client.predict(image=handle_file(str(bad)), level=9, api_name="/restore")
    path = client.predict(image=handle_file(str(SAMPLE)), level=9, api_name="/restore")  # still serving
    assert np.array_equal(_decode(Path(path).read_bytes()), expected[9])
    grid = client.predict(image=handle_file(str(SAMPLE)), api_name="/sweep")
    assert _decode(Path(grid).read_bytes()).shape[1] > _decode(Path(grid).read_bytes()).shape[0]


@pytest.mark.browser
def test_browser_level_slider(served, expected, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.skip(f"no system Chromium at {CHROMIUM} (apt-get install -y chromium chromium-driver; .ci/run does)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    seen = {}
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                   headless=True, args=FLAGS)
        try:
            page = ctx.new_page()
            page.set_default_timeout(180_000)
            requested = []
            page.on("request", lambda req: requested.append(req.url))
            page.goto(served)
            assert "minires+" in page.locator("#about").inner_text()   # the page says which model it serves
            page.set_input_files("#input-image input[type=file]", str(SAMPLE))
            page.wait_for_selector("#input-image img")
            for level in (0, 9):
                box = page.locator("#level input[type=number]")
                box.fill(str(level))
                box.press("Enter")
                page.click("#restore-button")
                page.wait_for_function(
                    "lv => document.querySelector('#scores')?.innerText.includes('Level ' + lv + ' ')", arg=level)
                # setting the number also fires the slider's release event: let that duplicate finish as well
                page.wait_for_function("() => !document.body.innerText.includes('processing |')")
                src = page.locator("#restored img").get_attribute("src")
                with urllib.request.urlopen(src) as r:  # the file the page shows, as its <img> loads it
                    seen[level] = _decode(r.read())
                page.screenshot(path=str(ARTIFACTS / f"demo_level{level}.png"), full_page=True)
            assert "Error" not in page.locator("#status").inner_text()
            page.click("#sweep-button")
            page.wait_for_function("() => document.querySelector('#status')?.innerText.includes('Sweep done')")
            assert page.locator("#sweep img").count() >= 10
            page.screenshot(path=str(ARTIFACTS / "demo_sweep.png"), full_page=True)
        finally:
            ctx.close()
    outside = [u for u in requested if not u.startswith((served.rstrip("/"), "data:", "blob:"))]
    assert not outside, f"the page called out: {outside[:5]}"
    assert not np.array_equal(seen[0], seen[9]), "the slider does not change the output"
    for level in (0, 9):
        assert np.array_equal(seen[level], expected[level]), f"level {level}: the page differs from `iqprior restore`"
