"""One training loop for `pretrain` and `finetune`: torchrun/DDP aware, resumable."""

from adaptkit.train.config import PRECISIONS, RunResult, TrainConfig
from adaptkit.train.finetune import ADAPTER_FILE, finetune
from adaptkit.train.loop import METRICS_FILE, Trainer
from adaptkit.train.pretrain import pretrain

__all__ = [
    "ADAPTER_FILE",
    "METRICS_FILE",
    "PRECISIONS",
    "RunResult",
    "TrainConfig",
    "Trainer",
    "finetune",
    "pretrain",
]
