"""``iqprior demo``: a local web app that restores an image at a condition level 0..9.

- :mod:`.service` — what the page does, without Gradio (models, uploads, restore, sweep, scores);
- :mod:`.app` — the Gradio page and its server (Gradio is imported there only: the ``demo`` extra);
- :mod:`.recipe` — ``python -m iqprior.demo.recipe``: trains the bundled model (``assets/minires-plus``).

See docs/demo.md.
"""
