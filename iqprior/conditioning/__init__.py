"""Score conditioning: the level embedding and its injection into any network."""
from .checks import find_submodule
from .embedding import ScoreEmbedding, auto_shape
from .freezing import freeze_modes
from .ops import MODES, Injection
from .wrapper import ConditionedModule, condition

__all__ = ["ScoreEmbedding", "ConditionedModule", "Injection", "condition", "find_submodule", "auto_shape",
           "freeze_modes", "MODES"]
