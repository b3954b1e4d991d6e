"""What a licence string in the adapter and weight tables allows: the non-commercial ones flagged.

The tables (:data:`adapters.specs.SPECS`, :data:`iqprior.weights.REGISTRY`,
:data:`iqprior.scoring.specs.SPECS`) keep each licence as the text its upstream
states; this module reads the restriction off that text, so an entry added to a
table is flagged without a second field to keep in step. THIRD_PARTY_NOTICES at
the repository root lists every ported architecture and bundled asset.
"""
from __future__ import annotations

#: phrases of a licence that forbids commercial use (S-Lab 1.0: "non-commercial purpose"; Creative Commons NC)
NON_COMMERCIAL_MARKERS = ("non-commercial", "noncommercial", "s-lab license", "cc by-nc")
#: phrases of an entry whose upstream grants no licence at all (all rights reserved: ask the authors)
NO_LICENCE_MARKERS = ("no licence stated", "no license stated")


def non_commercial(licence: str) -> bool:
    """Whether ``licence`` forbids commercial use (S-Lab License 1.0, CC BY-NC..., "non-commercial")."""
    text = licence.lower()
    return any(m in text for m in NON_COMMERCIAL_MARKERS)


def licence_flag(licence: str) -> str:
    """``"NON-COMMERCIAL"``, ``"NO LICENCE"`` (nothing granted) or ``""`` (a permissive or unknown licence)."""
    text = licence.lower()
    if non_commercial(licence):
        return "NON-COMMERCIAL"
    if any(m in text for m in NO_LICENCE_MARKERS):
        return "NO LICENCE"
    return ""


def describe(licence: str) -> str:
    """``licence`` with its flag, e.g. ``"S-Lab License 1.0 (non-commercial) [NON-COMMERCIAL]"``."""
    flag = licence_flag(licence)
    return f"{licence or '—'} [{flag}]" if flag else (licence or "—")
