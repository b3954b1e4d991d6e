"""Score conditioning: the level embedding and its injection into any network."""
from .embedding import ScoreEmbedding
from .inject import MODES, ConditionedModule, condition, find_submodule

__all__ = ["ScoreEmbedding", "ConditionedModule", "condition", "find_submodule", "MODES"]
