"""Argument checks of :func:`~iqprior.conditioning.condition`: submodule names, embedding names and embeddings."""
from __future__ import annotations

import difflib
from typing import Callable, Optional, Sequence, Union

from torch import nn

from .embedding import ScoreEmbedding

EMBEDDING_NAME = "score_embedding"
EMBEDDING_PREFIX = EMBEDDING_NAME + "."


def find_submodule(net: nn.Module, at: str) -> nn.Module:
    """Return ``net``'s submodule named ``at`` (as in ``named_modules``), with a "did you mean" hint."""
    modules = dict(net.named_modules())
    if at in modules and at != "":
        return modules[at]
    names = [n for n in modules if n]
    close = difflib.get_close_matches(at, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"{type(net).__name__} has no submodule {at!r}{hint}")


def free_embedding_name(taken: Callable[[str], bool]) -> str:
    """``score_embedding``, or the first of ``score_embedding_1``, ``_2``... not ``taken``."""
    if not taken(EMBEDDING_NAME):
        return EMBEDDING_NAME
    i = 1
    while taken(f"{EMBEDDING_NAME}_{i}"):
        i += 1
    return f"{EMBEDDING_NAME}_{i}"


Embeddings = Union[None, ScoreEmbedding, Sequence[Optional[ScoreEmbedding]]]


def embeddings_for(ats: list[str], embedding: Embeddings, mode: str, levels: int) -> list[ScoreEmbedding]:
    if embedding is None or isinstance(embedding, ScoreEmbedding):
        embs = [embedding] * len(ats) if len(ats) == 1 or embedding is None else None
        if embs is None:
            raise ValueError(f"{len(ats)} injection points need one ScoreEmbedding each (a list), or None "
                             "for automatic shapes")
    else:
        embs = list(embedding)
        if len(embs) != len(ats):
            raise ValueError(f"got {len(embs)} embeddings for {len(ats)} injection points {ats}")
    out = []
    for at, e in zip(ats, embs):
        if e is None:
            e = ScoreEmbedding(levels, None)
        if not isinstance(e, ScoreEmbedding):
            raise TypeError(f"embedding must be a ScoreEmbedding, got {type(e).__name__}")
        if mode == "adain" and e.shape is not None and (len(e.shape) != 2 or e.shape[0] != 2):
            raise ValueError(
                f"mode='adain' needs an embedding of shape (2, C) (scale, shift per channel); got "
                f"{e.shape} for {at!r}. Use ScoreEmbedding.for_adain(levels, C).")
        out.append(e)
    if len({id(e) for e in out}) != len(out):
        raise ValueError("each injection point needs its own ScoreEmbedding")
    return out
