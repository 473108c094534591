#!/usr/bin/env bash
# A documented SLURM sweep: the ListOps cell of two models x three seeds at the mini profile, one
# SLURM array task per cell (conf/hydra/launcher/slurm.yaml). Run it on the cluster's login node,
# from the repository root, inside the project's virtualenv with the launcher extra installed:
#
#   pip install -e ".[launchers]"
#   PARTITION=gpu ACCOUNT=my_lab bash scripts/slurm_example.sh
#
# Hydra submits the array and waits for it (keep the login shell alive, e.g. in tmux), then each
# cell has its result.json under results/local/runs/ and `python -m lra_snn.cli.leaderboard --results
# results/local/runs --out results/local --reference-runs results/reference-runs` builds the table. A job
# that hits the time limit is requeued (max_num_timeout) and resumes from its last.ckpt; a cell
# that already completed is skipped, so rerunning this script only runs what is missing.
#
# Environment variables (all optional):
#   PARTITION  sbatch --partition (default: the cluster's default partition)
#   ACCOUNT    sbatch --account   (default: none)
#   GPUS       GPUs per job; more than 1 runs Lightning DDP with one process per GPU (default 1)
#   HOURS      wall-time limit per job in hours (default 4)
#   PARALLEL   jobs of the array running at once (default 6)
#   PROFILE    tiny | mini | full (default mini); MODELS, TASKS, SEEDS: comma-separated sweep values
set -euo pipefail

GPUS=${GPUS:-1}
HOURS=${HOURS:-4}
PARALLEL=${PARALLEL:-6}
PROFILE=${PROFILE:-mini}
MODELS=${MODELS:-s4d}
TASKS=${TASKS:-listops}
SEEDS=${SEEDS:-1,2,3}

launcher=(
  hydra/launcher=slurm
  "hydra.launcher.partition=${PARTITION:-null}"
  "hydra.launcher.account=${ACCOUNT:-null}"
  "hydra.launcher.gpus_per_node=${GPUS}"
  "hydra.launcher.tasks_per_node=${GPUS}"        # one process per GPU (SLURM sets the DDP ranks)
  "hydra.launcher.timeout_min=$((HOURS * 60))"
  "hydra.launcher.array_parallelism=${PARALLEL}"
)
if (( GPUS > 1 )); then
  trainer=(trainer=ddp trainer.accelerator=gpu "trainer.devices=${GPUS}" trainer.precision=bf16-mixed)  # as trainer=gpu
else
  trainer=(trainer=gpu)
fi

python -m lra_snn.train -m "${launcher[@]}" "${trainer[@]}" \
  "model=${MODELS}" "data=${TASKS}" "seed=${SEEDS}" "profile=${PROFILE}" \
  trainer.enable_progress_bar=false "$@"
