#!/usr/bin/env bash
# The whole GPU job of issue 7 in one command, for a machine with a CUDA GPU (README, "GPU job").
#
#   bash scripts/gpu_job.sh                  # results under $OUT (default results/bench/gpu_job_<stamp>)
#
# 1. installs the wheels carried in wheels/ (`make wheels`: hydra-core, omegaconf, antlr4), if any,
#    with --no-deps --no-index (no network needed);
# 2. the full-size kernel tests (pytest -m gpu tests/ops);
# 3. scripts/bench_gpu.py: correctness at full size, copy bandwidth, tile sweep, primitive and
#    neuron timings with the papers' ratios beside ours;
# 4. python -m lra_snn.kernel_parity: a short training run at the published ListOps recipe, Triton
#    path against PyTorch path, loss curves and step times.
# Every step has its own time limit (seconds: GPU_TESTS_LIMIT, BENCH_LIMIT, PARITY_LIMIT) and log,
# so one overrun does not lose the others; extra arguments: BENCH_ARGS, PARITY_ARGS.
# summary.txt lists each step's exit status; the script exits 1 when any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/bench/gpu_job_$(date +%Y%m%d-%H%M%S)}
PY=${PY:-python}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
status=0

step() {  # step NAME LIMIT_S COMMAND...: run with a time limit, log to $OUT/NAME.log, record the exit status
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s): $*"
    timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "$name: exit $rc$([ "$rc" = 124 ] && echo ' (time limit)')" | tee -a "$OUT/summary.txt"
    [ "$rc" = 0 ] || status=1
}

if compgen -G "wheels/*.whl" > /dev/null; then
    step install_wheels 120 "$PY" -m pip install --quiet --no-deps --no-index wheels/*.whl
fi
# shellcheck disable=SC2086  # *_ARGS are word-split on purpose
step gpu_tests "${GPU_TESTS_LIMIT:-240}" "$PY" -m pytest -q -m gpu tests/ops -p no:cacheprovider
# shellcheck disable=SC2086
step bench_gpu "${BENCH_LIMIT:-300}" "$PY" scripts/bench_gpu.py --out "$OUT" ${BENCH_ARGS:-}
# shellcheck disable=SC2086
step kernel_parity "${PARITY_LIMIT:-240}" "$PY" -m lra_snn.kernel_parity --out "$OUT" ${PARITY_ARGS:-}
cat "$OUT/summary.txt"
exit $status
