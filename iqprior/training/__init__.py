"""Training utilities: checkpoints, resume, ``torch.distributed``; IQPFR stages and fine-tuning."""
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .distributed import DistInfo, dist_info, init_distributed, shard

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint", "DistInfo", "dist_info",
           "init_distributed", "shard"]
