"""Choices and defaults the library and the CLI share, written once.

Imports nothing heavy, so the CLI can show them in `--help` without loading torch.
"""

from __future__ import annotations

import enum
from pathlib import Path

from adaptkit.errors import AdaptkitError


class FreezeMode(str, enum.Enum):
    """What a fine-tune trains (adaptkit.adapt.surgery.freeze)."""

    TRANSFORMER = "transformer"  # only the new group; the transformer and everything old frozen
    NONE = "none"  # everything (full fine-tune)

    def __str__(self) -> str:
        return self.value


class Precision(str, enum.Enum):
    """Training arithmetic: plain fp32, or bf16 autocast (attention softmax stays fp32); `auto`
    is bf16 where the device computes it natively, else fp32 (adaptkit.train.loop)."""

    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"

    def __str__(self) -> str:
        return self.value


class SaveFormat(str, enum.Enum):
    """What each epoch of a fine-tune writes (adaptkit.train.finetune)."""

    AUTO = "auto"  # adapter epochs when only the new group trains and the base is large
    ADAPTER = "adapter"  # the new group only (adapter_model.safetensors + adapter_config.json)
    FULL = "full"  # the whole model in the reference layout (+ the adapter files beside)

    def __str__(self) -> str:
        return self.value


class KVDtype(str, enum.Enum):
    """The KV cache's element type during evaluation (adaptkit.evaluate.plan)."""

    AUTO = "auto"  # bf16 for large models, fp32 otherwise
    FP32 = "fp32"
    BF16 = "bf16"


class TokenOrderChoice(str, enum.Enum):
    """How a checkpoint's token concatenates its parts (adaptkit.meta: given, recorded or
    inferred)."""

    OBS_ACT_REW = "obs,act,rew"  # the released Vintix
    ACT_REW_OBS = "act,rew,obs"  # the quadruped fork

    def __str__(self) -> str:
        return self.value


class Sim(str, enum.Enum):
    """The physics behind the locomotion env (adaptkit.sim.backend): MuJoCo is built in; Genesis,
    the reference env's simulator, is the optional `genesis` extra."""

    MUJOCO = "mujoco"
    GENESIS = "genesis"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: Sim | str | None) -> Sim:
        """A Sim from its name (None: the default), or a one-line error naming the choices."""
        if value is None:
            return SIM
        try:
            return cls(str(value).lower())
        except ValueError:
            choices = ", ".join(s.value for s in cls)
            raise AdaptkitError(f"--sim: expected one of {choices}, got {value!r}") from None


SIM = Sim.MUJOCO

# -- where things live -------------------------------------------------------------------------
SAVE_DIR = Path("models")  # runs: SAVE_DIR/NAME/NNNN_epoch
BASE_MODEL = SAVE_DIR / "base"  # the main job's base model (built on first use)
DATA_DIR = Path("data")  # learning histories: DATA_DIR/<robot data_path>
STATS_FILE = "stats.json"  # looked for in the data folder

# -- training (adaptkit.train.TrainConfig) -----------------------------------------------------
EPOCHS = 10
LR = 3e-4  # pretraining, as the reference
BATCH_SIZE = 32  # windows per process
WARMUP_RATIO = 0.05
WEIGHT_DECAY = 0.1  # Linear weights only
PRECISION = Precision.FP32
# Fine-tuning (TrainConfig.for_finetune explains the two learning rates).
FINETUNE_EPOCHS = 10
FINETUNE_LR_FROZEN, FINETUNE_LR_FULL = 1e-3, 1e-4
FINETUNE_PRECISION = Precision.AUTO
# Early stopping (adaptkit.train.early_stop): one history in eight held out, stop after this many
# epochs without a 1 % better validation loss.
FINETUNE_VAL_SHARE = 0.125
FINETUNE_PATIENCE = 2
# A base this large (its weights in bytes, 100 MiB ≈ 26M fp32 parameters) counts as large: a
# frozen-trunk fine-tune then writes adapter-sized epochs (a full copy per epoch would be mostly
# the same bytes: 10 epochs of the released 330M model = 13 GB for 4M changed parameters), and
# evaluation keeps its KV cache in bf16. The default 0.66M model stays far below.
LARGE_MODEL_BYTES = 100 * 2**20

# -- evaluation (adaptkit.evaluate.EvalSettings) -----------------------------------------------
NUM_ENVS = 16
EPISODES = 3  # per env, chained in one context
HELD_OUT_SEED = 777  # the main job's comparison: no training data used this env seed
