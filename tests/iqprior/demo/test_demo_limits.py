"""What one visitor can make ``iqprior demo`` do is bounded (issue 33, items 6 and 7): a pixel cap of its own,
no URL inputs, same-origin requests only, cleaned outputs, a flag and a warning for a non-loopback host."""
from __future__ import annotations

import http.server
import os
import socket
import threading
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

pytest.importorskip("gradio")

from iqprior.cli import main  # noqa: E402
from iqprior.demo.limits import DEMO_MAX_PIXELS, check_host, prune_outputs  # noqa: E402
from iqprior.demo.service import DemoService  # noqa: E402
from iqprior.io import ImageReadError  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    return DemoService(device="cpu", out_dir=tmp_path_factory.mktemp("demo-out"))


@pytest.fixture(scope="module")
def served(service):
    from iqprior.demo.app import launch

    port = _free_port()
    app = launch(service, host="127.0.0.1", port=port, block=False)
    try:
        yield app, f"http://127.0.0.1:{port}/"
    finally:
        app.close()


def test_uploads_above_the_demo_cap_are_refused_from_the_header(service, tmp_path):
    path = tmp_path / "big.png"
    cv2.imwrite(str(path), np.full((2500, 2500, 3), 200, np.uint8))  # 6.25 MP of one colour, a few kB
    assert path.stat().st_size < 100_000 and DEMO_MAX_PIXELS < 2500 * 2500
    with pytest.raises(ImageReadError, match="4 MP limit"):
        service.load(path, "big.png")


def test_the_page_says_what_happens_to_large_images(service):
    from iqprior.demo.app import build_app

    app = build_app(service)
    text = " ".join(str(getattr(b, "value", "")) for b in app.blocks.values())
    assert "4 MP" in text and "refused" in text
    assert app.delete_cache is not None and app.delete_cache[1] > 0


def test_a_non_loopback_host_needs_the_flag_and_warns(capsys, monkeypatch):
    import iqprior.demo.app

    launched = []
    monkeypatch.setattr(iqprior.demo.app, "launch", lambda *a, **k: launched.append(k))
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert check_host(host, allow_remote=False) is None
    with pytest.raises(ValueError, match="--allow-remote"):
        check_host("0.0.0.0", allow_remote=False)
    assert "anyone" in check_host("0.0.0.0", allow_remote=True)
    assert main(["demo", "--host", "0.0.0.0", "--port", "7860"]) == 1  # refused before any model or server
    assert "--allow-remote" in capsys.readouterr().err and not launched


def test_outputs_are_pruned_and_an_owned_folder_removed(tmp_path):
    for i in range(5):
        (tmp_path / f"{i}.png").write_bytes(b"x")
        os.utime(tmp_path / f"{i}.png", (time.time() - 10 * (5 - i),) * 2)
    old = tmp_path / "old.png"
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 10**6,) * 2)
    assert prune_outputs(tmp_path, max_files=3, max_age=3600) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2.png", "3.png", "4.png"]
    s = DemoService(device="cpu")
    folder = s.out_dir
    assert folder.is_dir()
    s.close()
    assert not folder.exists()


def test_cross_origin_uploads_are_refused(served):
    app, url = served
    boundary = "xXx"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + b"\x89PNG fake" + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url + "gradio_api/upload", data=body, method="POST", headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}", "Origin": "http://evil.example"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 403


def test_url_inputs_are_never_fetched(served, tmp_path):
    from gradio_client import Client, handle_file

    fetched = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            fetched.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _, url = served
        client = Client(url, verbose=False, download_files=str(tmp_path), analytics_enabled=False)
        with pytest.raises(Exception, match="URL inputs are not accepted"):  # before gradio validates the host
            client.predict(image=handle_file(f"http://127.0.0.1:{server.server_port}/face.png"), level=9,
                           api_name="/restore")
    finally:
        server.shutdown()
    assert fetched == [], f"the demo fetched {fetched}"


def test_the_visitors_file_name_cannot_break_the_message(service, tmp_path):
    from iqprior.demo.app import _md

    bad = tmp_path / "x.png"
    bad.write_bytes(b"\x00")
    with pytest.raises(ImageReadError) as err:  # found by fuzzing the upload guard: a name with a newline
        service.load(bad, "0\n[click](http://evil.example)\x1b[2J")
    text = str(err.value)
    assert "\n" not in text and "\x1b" not in text
    assert "](" not in _md(err.value).replace("\\](", "").replace("\\(", "")
