"""One training loop for `pretrain` and `finetune`: torchrun/DDP aware, resumable."""

from adaptkit.train.config import PRECISIONS, FinetuneJob, RunResult, TrainConfig
from adaptkit.train.finetune import finetune
from adaptkit.train.loop import Trainer
from adaptkit.train.pretrain import pretrain
from adaptkit.train.run_dir import METRICS_FILE, RunDir

__all__ = [
    "METRICS_FILE",
    "PRECISIONS",
    "FinetuneJob",
    "RunDir",
    "RunResult",
    "TrainConfig",
    "Trainer",
    "finetune",
    "pretrain",
]
