#!/usr/bin/env bash
# The sim-to-sim table of docs/simulators.md: Mini Cheetah adapted on learning histories
# from simulator A (MuJoCo or Genesis), each model evaluated in A and in B. Needs the genesis
# extra (pip install 'adaptkit[genesis]' torch==2.13.0).
#
#   bash scripts/sim2sim.sh [WORKDIR]      # default: ./sim2sim
#
# Fine-tunes run 3 epochs (171 steps at lr 1e-3; one history x 10 epochs, ~70 steps, already
# matches the demonstrator in README's Results), as scripts/reproduce_fork.sh does.
set -euo pipefail
epochs=${FINETUNE_EPOCHS:-3}
work=${1:-sim2sim}
mkdir -p "$work" && cd "$work"

# 1. The main job's recipe on built-in defaults (base from Go1/Go2/A1 in MuJoCo, Mini Cheetah
#    histories in MuJoCo, frozen fine-tune).
adaptkit collect minicheetah --data-dir data
adaptkit finetune minicheetah --epochs "$epochs" --no-eval --json > ft_mujoco.json
base=$(adaptkit build-base --where)  # the shipped base, or models/base when one was built
# 2. The same recipe on Mini Cheetah histories collected in Genesis, on the same base (its
#    comparison at seed 777 runs in MuJoCo: the B of A = Genesis).
adaptkit collect minicheetah --sim genesis --data-dir data_genesis
adaptkit finetune minicheetah --pretrained-path "$base" --name mc_ft_genesis \
    --epochs "$epochs" --no-eval --dataset-config-paths data_genesis/dataset_config.yaml \
    --data-dir data_genesis --json > ft_genesis.json
# 3. Both simulators, same seed (777, held out) and envs (16 x 3 episodes in one context):
#    zero-shot, demonstrator and standing, then both fine-tunes.
adaptkit compare --robot minicheetah zero-shot="$base" ft-mujoco=models/minicheetah_finetune \
    ft-genesis=models/mc_ft_genesis --sim mujoco --seed 777 --num-envs 16 --episodes 3 --data-dir data --out compare_mujoco --json > /dev/null
adaptkit compare --robot minicheetah zero-shot="$base" --sim genesis --seed 777 \
    --num-envs 16 --episodes 3 --data-dir data --out compare_genesis_base --json > /dev/null
adaptkit compare --robot minicheetah ft-mujoco=models/minicheetah_finetune \
    ft-genesis=models/mc_ft_genesis --no-demonstrator --no-stand --sim genesis --seed 777 \
    --num-envs 16 --episodes 3 --data-dir data --out compare_genesis_ft --json > /dev/null

# 4. The table: normalised score = (return - standing) / (demonstrator - standing), per simulator.
python - <<'PY'
import json

def rows(path):
    return {r["label"]: r for r in json.load(open(path))["table"]}

sims = {
    "MuJoCo": rows("compare_mujoco/compare.json"),
    "Genesis": {**rows("compare_genesis_base/compare.json"),
                **rows("compare_genesis_ft/compare.json")},
}
print("| policy | evaluated in | return | normalised | falls | speed m/s |")
print("| --- | --- | --- | --- | --- | --- |")
for label in ("ft-mujoco", "ft-genesis", "zero-shot", "demonstrator", "stand"):
    for sim, t in sims.items():
        r, d, s = t[label], t["demonstrator"]["mean_return"], t["stand"]["mean_return"]
        norm = (r["mean_return"] - s) / (d - s)
        print(f"| {label} | {sim} | {r['mean_return']:.2f} | {norm:.2f} | "
              f"{r['falls']}/{r['num_episodes']} | {r['mean_speed']:.2f} |")
PY
