"""The import graph of ``iqprior`` and ``adapters`` (every import, function-level ones included) has no cycle.

The layer rule and the no-sideways rule between applications are import-linter contracts (setup.cfg,
``lint-imports``); a cycle is checked here, over grimp's graph (what import-linter reads).
"""
import grimp
import pytest


def cycles(graph) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index, low, on, stack, out, n = {}, {}, set(), [], [], 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = n
        n += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = n
                    n += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(edges[w])))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.add(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(comp)
    return out


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("iqprior", "adapters")


def test_no_import_cycle(graph):
    found = cycles(graph)
    assert not found, f"import cycle(s): {[sorted(c) for c in found]}"


def test_the_cycle_finder_finds_a_cycle():
    class Graph:
        modules = {"a", "b", "c", "d"}

        @staticmethod
        def find_modules_directly_imported_by(m):
            return {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}[m]

    assert cycles(Graph()) == [{"a", "b", "c"}]


def test_a_cycle_hidden_in_function_level_imports_is_found(tmp_path, monkeypatch):
    """grimp's graph holds imports made inside functions: a cycle of lazy imports only is found."""
    pkg = tmp_path / "planted_cycle"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("def f():\n    from .high import g\n    return g\n")
    (pkg / "high.py").write_text("def g():\n    from . import low\n    return low\n")
    (pkg / "alone.py").write_text("import os\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cycles(grimp.build_graph("planted_cycle", cache_dir=None)) == [{"planted_cycle.low", "planted_cycle.high"}]
