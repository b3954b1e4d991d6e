"""Training data: Eq. 16 degradations and score-labelled datasets (IQPFR, arXiv 2503.09294, App. 6.1.3)."""
from .datasets import HQ_THRESHOLD, PairedImageDataset, ScoredImageDataset, load_score_records, resolve_scores
from .degradations import PAPER, DegradationConfig, DegradationParams, apply_degradation, degrade, sample_params

__all__ = ["DegradationConfig", "DegradationParams", "PAPER", "degrade", "sample_params", "apply_degradation",
           "ScoredImageDataset", "PairedImageDataset", "load_score_records", "resolve_scores", "HQ_THRESHOLD"]
