"""The families table of docs/auto.md, generated from :mod:`adapters.auto.families` and spandrel's registry.

``python -c "from adapters.auto.table import families_markdown; print(families_markdown())"``
"""
from __future__ import annotations

from .families import FAMILIES, UNSUPPORTED
from .reading import registry
from .tiny import FULL_SIZE, TINY

#: how a computed injection point reads in the table
AT_LABELS = {"Compact": "body.<n-2>"}


def families_markdown() -> str:
    """The docs table (docs/auto.md): every family spandrel knows here, supported or not, with its entry.

    Columns: family, status, injection point (and why), scale, purpose, and whether
    the test suite runs the adapter contract on it. Scale and purpose are per file
    for most families (read from the weights), so they say so.
    """
    rows = ["| family | status | injection point (why) | scale | purpose | tested here |", "|---|---|---|---|---|---|"]
    fixed = {"GFPGAN": ("1", "FaceSR"), "RestoreFormer": ("1", "FaceSR"), "LaMa": ("1", "Inpainting")}
    for support in sorted(registry().architectures("insertion"), key=lambda s: str(s.architecture.id).lower()):
        arch_id = str(support.architecture.id)
        scale, purpose = fixed.get(arch_id, ("from the file", "SR if scale > 1, else Restoration"))
        if arch_id in UNSUPPORTED:
            rows.append(f"| {arch_id} | unsupported: {UNSUPPORTED[arch_id]} | – | {scale} | {purpose} | – |")
            continue
        entry = FAMILIES.get(arch_id)
        if entry is None or entry.at is None:
            point = "automatic (probe forward; warns with the module name)"
            if entry is not None and entry.call is not None:
                point += "; batch-safe call"
        else:
            at = entry.at if isinstance(entry.at, str) else AT_LABELS.get(arch_id, "computed from the network")
            point = f"`{at}` ({entry.why})"
        tested = "tiny file, contract" if arch_id in TINY else "full size, slow" if arch_id in FULL_SIZE else "no"
        rows.append(f"| {arch_id} | supported | {point} | {scale} | {purpose} | {tested} |")
    return "\n".join(rows) + "\n"
