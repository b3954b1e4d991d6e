"""Score conditioning: the level embedding and its injection into any network."""
from .embedding import ScoreEmbedding, auto_shape
from .inject import MODES, ConditionedModule, Injection, condition, find_submodule
from .modes import freeze_modes

__all__ = ["ScoreEmbedding", "ConditionedModule", "Injection", "condition", "find_submodule", "auto_shape",
           "freeze_modes", "MODES"]
