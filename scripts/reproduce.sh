#!/usr/bin/env bash
# Rebuilds every artefact and figure of README's "Results" from nothing, with adaptkit's own
# commands: learning histories for the four robots, the Go1/Go2/A1 base model, the Mini Cheetah
# fine-tune (new group, frozen transformer), a same-budget from-scratch baseline, comparisons on
# two held-out seeds, and the check that Go1/Go2/A1 act bit-identically after the fine-tune.
#
#   bash scripts/reproduce.sh [WORKDIR]      # default: ./reproduce (about 15 min on 2 CPU cores, + the fork's part)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-reproduce}
mkdir -p "$work" && cd "$work"
t0=$(date +%s)

# 1. The main job on built-in defaults: the shipped Go1/Go2/A1 base (or models/base when one was
#    built there), collect minicheetah, add its group, freeze, fine-tune, compare (seed 777).
adaptkit finetune minicheetah
base=$(adaptkit build-base --where)  # the base the fine-tune started from

# 2. Same budget from scratch: the same model size, Mini Cheetah data only, same epochs and batch.
adaptkit pretrain "$repo/configs/minicheetah_finetune_config.yaml" --name minicheetah_scratch \
    --epochs 10 --precision bf16

# 3. Everything on two seeds no training data used, 16 envs x 6 episodes in one context each
#    (the in-context base too: no gradient step on the Mini Cheetah, docs/in_context.md).
in_context=$(adaptkit build-base --recipe in-context --where)
for seed in 777 778; do
    adaptkit compare --robot minicheetah --episodes 6 --seed "$seed" --out "results/seed$seed" \
        --models zero-shot="$base" in-context="$in_context" fine-tuned=models/minicheetah_finetune \
        scratch=models/minicheetah_scratch
done

# 4. The old robots must not notice: same seed, base vs fine-tuned checkpoint, identical episodes.
for robot in go1 go2 a1; do
    for model in "$base" models/minicheetah_finetune; do
        adaptkit eval "$model" --robot "$robot" --episodes 2 --seed 777 \
            --out "results/unchanged/$robot-$(basename "$model")" >/dev/null
    done
    cmp "results/unchanged/$robot-$(basename "$base")/episodes.csv" \
        "results/unchanged/$robot-minicheetah_finetune/episodes.csv"
    echo "$robot: identical episodes under the base and the fine-tuned checkpoint"
done
# 5. Little data: one learning history (1/8 of the data), same 10 epochs, frozen fine-tune vs scratch.
mkdir -p data/minicheetah_one_history
cp data/minicheetah_trajectories/history_000.h5 data/minicheetah_one_history/
sed 's/minicheetah_trajectories/minicheetah_one_history/' \
    "$repo/configs/minicheetah_finetune_config.yaml" > data/one_history_config.yaml
adaptkit finetune minicheetah --dataset-config-paths data/one_history_config.yaml \
    --name minicheetah_finetune_1h --no-eval
adaptkit pretrain data/one_history_config.yaml --name minicheetah_scratch_1h --epochs 10 \
    --precision bf16
adaptkit compare --robot minicheetah --seed 777 --out results/one_history \
    --models fine-tuned=models/minicheetah_finetune_1h scratch=models/minicheetah_scratch_1h

# 6. The quadruped fork's layout (33-dim observation, act,rew,obs, fork sizes): its own base,
#    Mini Cheetah adapted as a 33-dim and a 45-dim group (docs/fork.md).
bash "$repo/scripts/reproduce_fork.sh" fork

echo "done in $(( $(date +%s) - t0 )) s; results in $work/results and $work/fork/results"
