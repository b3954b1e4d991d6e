"""Training utilities: checkpoints, resume, ``torch.distributed``; IQPFR stages and fine-tuning."""
from ..distributed import DistInfo, dist_info, init_distributed, shard
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint", "DistInfo", "dist_info",
           "init_distributed", "shard"]
