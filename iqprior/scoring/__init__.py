"""NR-IQA ensemble scoring (paper §3.2 "Quality Prior Ensembles", App. 6.1.2)."""
from ..levels import as_levels, level_to_score, score_to_level
from .calibration import Calibration
from .ensemble import EnsembleScorer, create_scorer, preset_members
from .fullref import build_fullref, fullref_available
from .members import MemberWeightsMissing, build_member, member_available
from .specs import PRESETS, SPECS, MetricSpec, WeightSpec, get_spec

__all__ = ["Calibration", "EnsembleScorer", "create_scorer", "preset_members", "score_to_level", "level_to_score",
           "as_levels", "MetricSpec", "WeightSpec", "SPECS", "PRESETS", "get_spec", "build_member",
           "member_available", "MemberWeightsMissing", "build_fullref", "fullref_available"]
