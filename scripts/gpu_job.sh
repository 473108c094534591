#!/usr/bin/env bash
# The whole GPU check in one command, for a machine with a CUDA GPU (README, "GPU job").
#
#   bash scripts/gpu_job.sh                  # results under $OUT (default results/bench/gpu_job_<stamp>)
#
# 1. installs the wheels carried in wheels/ (`make wheels`: hydra-core, omegaconf, antlr4, pydantic), if any,
#    with --no-deps --no-index (no network needed); `datasets` is not among them (its wheels and
#    pyarrow's exceed the 64 MiB carried): without it the ListOps data of step 4 is generated and
#    tokenised in memory;
# 2. the full-size kernel tests (pytest -m gpu tests/ops);
# 3. scripts/bench_gpu.py: correctness at full size, copy bandwidth, tile sweep, primitive and
#    neuron timings with the papers' ratios beside ours;
# 4. python -m lra_snn.cli.kernel_parity: a short training run at the published ListOps recipe (model,
#    optimizer, lengths 500-2000; 6,400 generated training examples, enough for the 200 steps), Triton
#    path against PyTorch path, loss curves and step times, for the LIF and DSN models.
# Every step has its own time limit (seconds: GPU_TESTS_LIMIT, BENCH_LIMIT, PARITY_LIMIT; by default
# together under 600 s) and log, so one overrun does not lose the others;
# BENCH_ARGS and PARITY_ARGS replace the steps' default arguments; WHEELS is the wheel folder,
# DATA_DIR where the parity run's data is generated.
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

WHEELS=${WHEELS:-wheels}
DATA_DIR=${DATA_DIR:-${TMPDIR:-/tmp}/lra_snn_gpu_job_data}  # generated ListOps, kept out of $OUT
BENCH_ARGS=${BENCH_ARGS:---repeats 5 --warmup 2}
PARITY_ARGS=${PARITY_ARGS:---recipe full --models lif_ssm,dsn_ssm --steps 200 --override data.n_train=6400 \
--override data.n_val=64 --override data.n_test=64}

if compgen -G "$WHEELS/*.whl" > /dev/null; then
    step install_wheels 60 "$PY" -m pip install --quiet --no-deps --no-index "$WHEELS"/*.whl
fi
step gpu_tests "${GPU_TESTS_LIMIT:-120}" "$PY" -m pytest -q -m gpu tests/ops -p no:cacheprovider
# shellcheck disable=SC2086  # the *_ARGS are word-split on purpose
step bench_gpu "${BENCH_LIMIT:-270}" "$PY" scripts/bench_gpu.py --out "$OUT" $BENCH_ARGS
# shellcheck disable=SC2086
step kernel_parity "${PARITY_LIMIT:-180}" "$PY" -m lra_snn.cli.kernel_parity --out "$OUT" --data-dir "$DATA_DIR" $PARITY_ARGS
cat "$OUT/summary.txt"
exit $status
