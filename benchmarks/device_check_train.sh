#!/bin/bash
# GPU check of the training loop: CUDA tests, then benchmarks/bench_train.py on CUDA (50,000 images,
# teacher epoch, compile). Run from the repository root; results also go to $OUT (default: a temp dir).
OUT=${OUT:-$(mktemp -d)}
PY=python
command -v $PY >/dev/null || PY=python3
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv | tee $OUT/gpu.txt
$PY -c "import torch, triton; print(torch.__version__, triton.__version__, torch.cuda.is_available())" 2>&1 | tee -a $OUT/gpu.txt
( timeout 150 $PY -m pytest -x -q -p no:cacheprovider tests/test_augment.py tests/test_train_loop.py -k "cuda or fixed_seed" 2>&1 | tail -15 ) | tee $OUT/tests.txt
( timeout 140 $PY benchmarks/bench_train.py --device cuda --images 50000 --epochs 1 --repeats 1 --teacher --pairs "resnet32x4->resnet8x4" 2>&1 | grep -v Warning ) | tee $OUT/bench_big.txt
( timeout 60 $PY benchmarks/bench_train.py --device cuda --images 50000 --epochs 1 --repeats 1 --pairs "mlp->mlp" 2>&1 | grep -v Warning ) | tee $OUT/bench_small.txt
( timeout 170 $PY benchmarks/bench_train.py --device cuda --images 10000 --epochs 2 --repeats 1 --compile --pairs "resnet32x4->resnet8x4" 2>&1 | grep -v "Warning\|^W11" | tail -20 ) | tee $OUT/bench_compile.txt
