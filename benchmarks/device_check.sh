#!/usr/bin/env bash
# The whole GPU check in one call (about 7 minutes on one H100): the soft rank's device path and
# the loss benchmark (benchmarks/gpu_check.sh), then the training loop's CUDA tests and
# benchmarks/bench_train.py at 50,000 images (teacher epoch, the benchmark pair, a small pair,
# and the benchmark pair with --compile). Logs go to $OUT (default: a temporary folder).
set -u
cd "$(dirname "$0")/.."
export OUT=${OUT:-$(mktemp -d)} PYTHONPATH=$PWD PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
bash benchmarks/gpu_check.sh
run() {  # run NAME TIMEOUT CMD...
  local name=$1 limit=$2; shift 2
  echo "=== $name: $*"
  timeout "$limit" "$@" 2>&1 | grep -v "Warning\|^W11\|^  warnings.warn" | tee "$OUT/$name.txt"
  echo "=== $name: exit ${PIPESTATUS[0]}"
}
run train_tests 60 "$PY" -m pytest -q -p no:cacheprovider tests/test_augment.py tests/test_train_loop.py -k "cuda or fixed_seed"
run bench_big 150 "$PY" benchmarks/bench_train.py --device cuda --images 50000 --epochs 1 --repeats 1 --workers 8 --teacher --pairs "resnet32x4->resnet8x4"
run bench_small 50 "$PY" benchmarks/bench_train.py --device cuda --images 50000 --epochs 1 --repeats 1 --workers 8 --pairs "mlp->mlp"
run bench_compile 120 "$PY" benchmarks/bench_train.py --device cuda --images 10000 --epochs 2 --repeats 1 --compile --pairs "resnet32x4->resnet8x4"
