"""Running one adapter from several threads, and DataParallel's replicas on the CPU."""
from __future__ import annotations

import threading
from typing import Any, Callable, Sequence

from torch import nn

from iqprior.torch_compat import cpu_replicas

from ..base import Adapter

__all__ = ["cpu_replicas", "rendezvous", "run_in_threads", "targets"]


def targets(model: Adapter) -> list[nn.Module]:
    from iqprior.conditioning import find_submodule
    return [find_submodule(model.net, s.at) for s in model.injections]


def rendezvous(model: Adapter, parties: int) -> list[Any]:
    """A barrier on every injection target: concurrent calls are all inside the network before any goes on."""
    barrier = threading.Barrier(parties, timeout=60)
    seen: set[int] = set()

    def wait(module, inputs):
        key = (threading.get_ident(), id(module))
        if key not in seen:  # once per thread and target
            seen.add(key)
            barrier.wait()
    return [t.register_forward_pre_hook(wait) for t in targets(model)[:1]]


def run_in_threads(fns: Sequence[Callable[[], Any]]) -> list[Any]:
    """Call each of ``fns`` in its own thread; their results in order (the first error is re-raised here)."""
    results: list[Any] = [None] * len(fns)
    errors: list[BaseException] = []

    def run(i):
        try:
            results[i] = fns[i]()
        except BaseException as e:  # reported in the calling thread
            errors.append(e)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results
