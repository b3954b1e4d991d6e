"""The Gradio page of ``iqprior demo`` (:func:`build_app`) and its server (:func:`launch`).

Everything the page computes goes through :class:`iqprior.demo.service.DemoService`.
Named API endpoints (``gradio_client``): ``/restore(image, level)`` returns the
restored PNG; ``/sweep(image)`` returns the grid of levels 0..9. Every compute
event shares one queue slot (``concurrency_id="model"``, limit 1), so requests
run one at a time. Gradio's analytics, share links and server-side rendering
are off; the default theme's fonts are served locally. What one visitor can
make the server do is bounded by :mod:`iqprior.demo.limits` (pixel cap, no
URL inputs, same-origin requests only, cache and outputs cleaned).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from .limits import CACHE_SECONDS, DEMO_MAX_PIXELS, MAX_UPLOAD, QUEUE_SIZE, SameOriginOnly, refuse_urls
from .service import FACE_MODES, LEVELS, DemoService, bundled_examples

CONCURRENCY = "model"
EXPECTED = (ValueError, TypeError, FileNotFoundError)  # user-facing errors: a message in the page


def offline_environment() -> None:
    """Turn off Gradio's and Hugging Face's outgoing calls (set before ``import gradio``)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("GRADIO_SHARE", "False")


def _md(e: BaseException) -> str:
    """An error message as Markdown text: its characters shown as they are, none taken as markup (a file name
    such as ``[x](http://...)`` is not a link)."""
    import re

    return re.sub(r"([\\`*_{}\[\]()#+!|<>~-])", r"\\\1", str(e))


def _fmt(s: float) -> str:
    return "n/a" if s != s else f"{s:.3f}"


def _guard_upload(component, service: DemoService) -> None:
    """Check an uploaded file with the library's reader before Gradio opens it: a non-image, a header over the
    pixel cap or a broken file becomes a message in the page (``gr.Error``), not a stack trace."""
    import gradio as gr

    refuse_urls(component)  # uploads only: a URL payload is refused before Gradio would fetch it
    original = component.preprocess

    def preprocess(payload):
        path = getattr(payload, "path", None)
        if path:
            try:
                service.load(path, getattr(payload, "orig_name", None) or Path(path).name)
            except EXPECTED as e:
                raise gr.Error(str(e), print_exception=False) from None
        return original(payload)

    component.preprocess = preprocess


def build_app(service: DemoService):
    """The page: upload + samples, model, face mode, level slider, before/after, scores, sweep + download."""
    offline_environment()
    import gradio as gr

    first = service.choices[0]
    labels = [c.label for c in service.choices]
    members = ", ".join(service.scorer.names)
    # uploads and results in Gradio's cache: files older than CACHE_SECONDS deleted every CACHE_SECONDS, all at exit
    with gr.Blocks(title="iqprior demo", analytics_enabled=False, delete_cache=(CACHE_SECONDS, CACHE_SECONDS)) as app:
        gr.Markdown("# iqprior: the quality knob\nA '+' model restores an image *at a condition level* 0..9 "
                    "(IQPFR, arXiv 2503.09294, Fig. 13): 9 asks for the best quality seen in training.")
        about = gr.Markdown(first.description, elem_id="about")
        with gr.Row():
            with gr.Column(scale=1):
                image = gr.Image(label="Input image", type="filepath", image_mode=None, sources=["upload"],
                                 format="png", elem_id="input-image")
                examples = [[str(p)] for p in bundled_examples()]
                if examples:
                    gr.Examples(examples, inputs=[image], label="Bundled samples (examples/data)")
                model = gr.Dropdown(labels, value=first.label, label="Model", elem_id="model")
                face = gr.Radio(list(FACE_MODES), value="aligned", label="Face input: an aligned crop or a whole photo",
                                visible=service.is_face_model(first.label), elem_id="face")
                level = gr.Slider(min(LEVELS), max(LEVELS), value=max(LEVELS), step=1, label="Condition level",
                                  elem_id="level")
                with gr.Row():
                    run = gr.Button("Restore", variant="primary", elem_id="restore-button")
                    sweep_btn = gr.Button("Sweep levels 0..9", elem_id="sweep-button")
            with gr.Column(scale=2):
                compare = gr.ImageSlider(label="Before / after", type="filepath", format="png", elem_id="compare")
                restored = gr.Image(label="Restored", type="filepath", format="png", interactive=False,
                                    elem_id="restored")
                scores = gr.Markdown(elem_id="scores")
                status = gr.Markdown(elem_id="status")
        gallery = gr.Gallery(label="Sweep: levels 0..9", columns=5, format="png", elem_id="sweep")
        grid = gr.File(label="Download the sweep (PNG grid)", elem_id="sweep-file")
        gr.Markdown(f"Quality score: the mean of the members {members}, each normalised to 0..1 by its "
                    "documented range (higher is better), computed on the 8-bit images shown; no-reference "
                    "members can disagree with your eyes (PIQE rates smooth images well). "
                    f"Requests run one at a time. Uploads above {DEMO_MAX_PIXELS / 1e6:.0f} MP (e.g. 2000x2000) "
                    "are refused, not downscaled: resize larger images first.", elem_id="limits")
        _guard_upload(image, service)

        def restore_ui(path: Optional[str], lv: float, label: str, mode: str):
            try:
                r = service.restore(path, lv, label, mode, name=Path(path).name if path else None)
            except EXPECTED as e:
                return None, None, "", f"**Error:** {_md(e)}"
            text = (f"Level **{r.level}** · quality score: input **{_fmt(r.score_before)}** → "
                    f"output **{_fmt(r.score_after)}**")
            if r.faces == 0:
                text += " · no face found: the photo is copied through"
            return (str(r.before), str(r.after)), str(r.after), text, ""

        def sweep_ui(path: Optional[str], label: str, mode: str):
            try:
                s = service.sweep(path, label, mode, name=Path(path).name if path else None)
            except EXPECTED as e:
                return [], None, f"**Error:** {_md(e)}"
            items = [(str(p), f"level {lv} · score {_fmt(s.scores[lv])}") for lv, p in s.levels.items()]
            return items, str(s.grid), f"Sweep done · input score {_fmt(s.score_input)}"

        def pick_model(label: str):
            try:
                service.model(label)
                c = service.choice(label)
                return c.description, gr.update(visible=service.is_face_model(label)), ""
            except EXPECTED as e:
                return gr.update(), gr.update(), f"**Error:** {_md(e)}"

        ui_in = [image, level, model, face]
        ui_out = [compare, restored, scores, status]
        common = dict(concurrency_id=CONCURRENCY, api_visibility="undocumented")
        run.click(restore_ui, ui_in, ui_out, api_name="restore_ui", **common)
        level.release(restore_ui, ui_in, ui_out, api_name="restore_level_ui", **common)
        sweep_btn.click(sweep_ui, [image, model, face], [gallery, grid, status], api_name="sweep_ui", **common)
        model.change(pick_model, [model], [about, face, status], api_name="pick_model", **common)

        # named API endpoints: the launch model, aligned faces; errors reach the client as their message
        api_image = gr.Image(label="image", type="filepath", image_mode=None, format="png", visible=False)
        api_level = gr.Number(label="level", value=9, precision=0, visible=False)
        api_out = gr.Image(label="restored", type="filepath", format="png", visible=False)
        api_grid = gr.File(label="sweep", visible=False)
        _guard_upload(api_image, service)

        def restore(image: str, level: int) -> str:
            """Restore ``image`` at condition ``level`` (0..9) with the launch model; returns the PNG."""
            try:
                return str(service.restore(image, level, scores=False).after)
            except EXPECTED as e:
                raise gr.Error(str(e), print_exception=False) from None

        def sweep(image: str) -> str:
            """Restore ``image`` at every level 0..9 with the launch model; returns the labelled grid (PNG)."""
            try:
                return str(service.sweep(image).grid)
            except EXPECTED as e:
                raise gr.Error(str(e), print_exception=False) from None

        hidden = gr.Button(visible=False)
        hidden.click(restore, [api_image, api_level], api_out, api_name="restore", concurrency_id=CONCURRENCY)
        hidden.click(sweep, [api_image], api_grid, api_name="sweep", concurrency_id=CONCURRENCY)
    app.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
    return app


def launch(service: DemoService, host: str = "127.0.0.1", port: int = 7860, block: bool = True,
           **kwargs: Any) -> Any:
    """Serve :func:`build_app` on ``host:port`` (no share link, no analytics); returns the Gradio app."""
    from starlette.middleware import Middleware

    app = build_app(service)
    allowed = [str(service.out_dir)] + [str(p.parent) for p in bundled_examples()]
    app.launch(server_name=host, server_port=port, share=False, inbrowser=False, prevent_thread_lock=not block,
               allowed_paths=list(dict.fromkeys(allowed)), ssr_mode=False, mcp_server=False, footer_links=["api"],
               max_file_size=MAX_UPLOAD, show_error=True, quiet=not block,
               app_kwargs={"middleware": [Middleware(SameOriginOnly)]}, **kwargs)
    return app
