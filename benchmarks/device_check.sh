#!/usr/bin/env bash
# The whole GPU check in one call (about 7 minutes on one H100), from the repository root:
#
#   bash benchmarks/device_check.sh     (logs go to $OUT, default: a temporary folder)
#   bash benchmarks/device_check.sh --smoke   (versions and a tiny benchmark: checks that it starts)
#
# 1. versions of torch / triton and the GPU;
# 2. the Triton PAV kernel against the numba PAV on the GPU (tests/triton_cases.py with
#    PCOH_TEST_DEVICE=cuda: values, block ids, backward, gradcheck, no host synchronisation under
#    torch.cuda.set_sync_debug_mode("error"), capture and replay in a torch.cuda.CUDAGraph), then
#    the CUDA-parametrised tests of the ranking and loss modules;
# 3. a soft-rank call under sync-debug "error" mode and in a CUDA graph, outside pytest (printed);
# 4. benchmarks/bench_loss.py --device cuda;
# 5. the training loop's CUDA tests and benchmarks/bench_train.py at 50,000 images (teacher epoch,
#    the benchmark pair, a small pair, and the benchmark pair with --compile).
# Every step runs even when an earlier one fails; the exit status is the number of failed steps.
set -u
SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1  # --smoke: the info step and a tiny benchmark only
cd "$(dirname "$0")/.."
export OUT=${OUT:-$(mktemp -d)} PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
LOG="$OUT"
mkdir -p "$LOG"
fails=0
step() {  # step NAME TIMEOUT_S CMD...: run, tee to $LOG/NAME.txt, count failures
  local name=$1 limit=$2
  shift 2
  echo "=== $name: $*"
  local t0=$SECONDS
  timeout "$limit" "$@" 2>&1 | grep -v "Warning\|^W11\|^  warnings.warn" | tee "$LOG/$name.txt"
  local rc=${PIPESTATUS[0]}
  echo "=== $name: exit $rc, $((SECONDS - t0)) s"
  [ "$rc" -eq 0 ] || fails=$((fails + 1))
}

step info 60 "$PY" - <<'PYEOF'
import platform, torch
print("python", platform.python_version(), "| torch", torch.__version__, "| CUDA", torch.version.cuda)
try:
    import triton
    print("triton", triton.__version__)
except ImportError as err:
    print("triton missing:", err)
print("cuda available:", torch.cuda.is_available())
if torch.cuda.is_available():
    print("gpu:", torch.cuda.get_device_name(), torch.cuda.get_device_properties(0))
PYEOF

if ! "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
  echo "device_check: torch.cuda.is_available() is False here; nothing to check"
  [ "$SMOKE" -eq 1 ] && exit "$fails"  # a smoke run only checks that the script starts
  exit 1
fi
if [ "$SMOKE" -eq 1 ]; then
  step bench_smoke 300 "$PY" benchmarks/bench_loss.py --device cuda --smoke
  echo "device_check --smoke: $fails failed step(s)"
  exit "$fails"
fi

step kernel_tests 150 env PCOH_TEST_DEVICE=cuda "$PY" -m pytest -q -p no:cacheprovider tests/triton_cases.py
if "$PY" -c "import hypothesis, sklearn" 2>/dev/null; then
  step cuda_tests 90 "$PY" -m pytest -q -p no:cacheprovider tests/test_ranking.py tests/test_losses.py -k "cuda and not triton_kernel"
else  # the ranking tests' property checks need hypothesis; the kernel checks above do not
  echo "=== cuda_tests: skipped (hypothesis or scikit-learn not importable here)"
fi

step no_sync_and_graph 90 "$PY" - <<'PYEOF'
import time, torch
from pcoh.ranking import soft_rank, _SoftRank

x = torch.randn(1024, 1023, device="cuda", requires_grad=True)
w = torch.randn_like(x)
soft_rank(x, 0.03).mul(w).sum().backward()  # compile the kernel first
torch.cuda.synchronize()
torch.cuda.set_sync_debug_mode("error")
out = soft_rank(x, 0.03)
out.mul(w).sum().backward()
torch.cuda.set_sync_debug_mode("default")
# Keep the values only: a live output keeps its autograd graph, and with it the AccumulateGrad
# node of x made on the default stream, which a later capture would reuse (and fail on).
out = out.detach()
ref = _SoftRank.apply(x.detach().cpu(), 0.03)
print("no host sync in soft_rank forward + backward: OK; max |gpu - cpu| =",
      (out.cpu() - ref).abs().max().item())
del out

# Whole-step capture as PyTorch documents it: warm up on a side stream, grads set to None,
# no reference to an earlier autograd graph, static input and weights, then capture and replay.
s = torch.cuda.Stream()
s.wait_stream(torch.cuda.current_stream())
with torch.cuda.stream(s):
    for _ in range(3):
        x.grad = None
        soft_rank(x, 0.03).mul(w).sum().backward()
torch.cuda.current_stream().wait_stream(s)
g = torch.cuda.CUDAGraph()
x.grad = None
with torch.cuda.graph(g):
    y = soft_rank(x, 0.03)
    y.mul(w).sum().backward()
with torch.no_grad():
    x.copy_(torch.randn_like(x))
g.replay()
torch.cuda.synchronize()
xc = x.detach().cpu().requires_grad_(True)
ref = _SoftRank.apply(xc, 0.03)
ref.mul(w.cpu()).sum().backward()
print("CUDA graph capture + replay: OK; max |replay - cpu| =", (y.detach().cpu() - ref.detach()).abs().max().item(),
      "| grad:", (x.grad.cpu() - xc.grad).abs().max().item())
t = []
for _ in range(20):
    torch.cuda.synchronize(); t0 = time.perf_counter(); g.replay(); torch.cuda.synchronize(); t.append(time.perf_counter() - t0)
print(f"graph replay (soft rank fwd + bwd, 1024 x 1023): median {sorted(t)[10] * 1e3:.2f} ms")

# Informational (not a failure of this step): does the whole PC loss avoid host syncs?
from pcoh import PerceptionCoherenceLoss
st, te = torch.randn(256, 32, device="cuda", requires_grad=True), torch.randn(256, 128, device="cuda")
loss_fn = PerceptionCoherenceLoss()
loss_fn(st, te).backward()
torch.cuda.synchronize()
torch.cuda.set_sync_debug_mode("error")
try:
    loss_fn(st, te).backward()
    print("PerceptionCoherenceLoss forward + backward: no host sync")
except RuntimeError as err:
    print("PerceptionCoherenceLoss forward + backward synchronises (info only):", str(err).splitlines()[0])
finally:
    torch.cuda.set_sync_debug_mode("default")
PYEOF

step bench 150 "$PY" benchmarks/bench_loss.py --device cuda --repeats 9
step train_tests 60 "$PY" -m pytest -q -p no:cacheprovider tests/test_augment.py tests/test_train_loop.py -k "cuda or fixed_seed"
step bench_big 150 "$PY" benchmarks/bench_train.py --device cuda --images 50000 --epochs 1 --repeats 1 --workers 8 --teacher --pairs "resnet32x4->resnet8x4"
step bench_small 50 "$PY" benchmarks/bench_train.py --device cuda --images 50000 --epochs 1 --repeats 1 --workers 8 --pairs "mlp->mlp"
step bench_compile 120 "$PY" benchmarks/bench_train.py --device cuda --images 10000 --epochs 2 --repeats 1 --compile --pairs "resnet32x4->resnet8x4"
echo "device_check: $fails failed step(s); logs in $LOG"
exit "$fails"
