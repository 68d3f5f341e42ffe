#!/usr/bin/env bash
# The GPU benchmark in one go, under 8 minutes, offline:
#   benchmarks/gpu.sh                  # CUDA: batch 1-64 fp32/fp16, TensorRT if it builds, device decode,
#                                      #       then the `mugpos bench --device cuda` table
#   benchmarks/gpu.sh --device cpu     # the same script on a CPU (small batches, no fp16/TensorRT)
# Environment: PYTHON (default python3), OUT (where JSON goes; default bench-out/),
# WHEELS (folder of wheels for what is missing; default build/gpu-wheels), SITE (where they go),
# MUGPOS_TEST_DATA. Make the wheels on a networked machine with benchmarks/README.md's pip download line.
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=cuda
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --device=*) DEVICE="${1#*=}"; shift ;;
    *) echo "usage: $0 [--device cuda|cpu]" >&2; exit 2 ;;
  esac
done
PY="${PYTHON:-python3}"
OUT="${OUT:-bench-out}"
WHEELS="${WHEELS:-build/gpu-wheels}"
SITE="${SITE:-$PWD/build/gpu-site}"
mkdir -p "$OUT"
export YOLO_OFFLINE=1 HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
T0=$(date +%s)
say() { echo "[gpu.sh +$(( $(date +%s) - T0 ))s] $*" >&2; }

# 1. torch: use the machine's own if it has one (GPU images ship it); install the pinned one only if not.
if ! "$PY" -c "import torch, torchvision" 2>/dev/null; then
  say "no torch here: installing torch==2.14.1 torchvision==0.29.1"
  "$PY" -m pip install -q torch==2.14.1 torchvision==0.29.1 || { say "torch install failed"; exit 1; }
fi

# 2. what mugpos needs on top of torch. GPU images ship torch inside their own venv, and a venv made
#    from a venv cannot see it, so missing packages go into a side folder on PYTHONPATH instead.
need='import ultralytics, open_clip, pydantic_settings, onnx'
if ! "$PY" -c "$need" 2>/dev/null; then
  if compgen -G "$WHEELS/*.whl" >/dev/null; then
    say "installing missing packages from $WHEELS into $SITE"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$SITE" "$WHEELS"/*.whl \
      || { say "wheel install failed"; exit 1; }
  else
    say "installing the repo's dependencies from the index into $SITE"
    "$PY" -m pip install -q --target "$SITE" . || { say "pip install failed (offline? put wheels in $WHEELS)"; exit 1; }
  fi
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the repo itself, straight from the tree
VPY="$PY"
"$VPY" -c "import mugpos.engine.batching, ultralytics, torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'ultralytics', ultralytics.__version__)" || exit 1
if [ "$DEVICE" != cpu ]; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true; fi
say "setup done"

# 3. the GPU benchmark (batch sizes, fp16, TensorRT, device decode)
if [ "$DEVICE" = cpu ]; then BATCHES=1,2,4,8; TRT=--no-trt; else BATCHES=1,2,4,8,16,32,64; TRT="--trt-budget-s 150"; fi
timeout 300 "$VPY" benchmarks/bench_gpu.py --device "$DEVICE" --batches "$BATCHES" $TRT \
  --json-out "$OUT/bench_gpu.json" 2>"$OUT/bench_gpu.log"
rc=$?; [ $rc -ne 0 ] && { say "bench_gpu exited $rc"; tail -5 "$OUT/bench_gpu.log" >&2; }
say "bench_gpu done"

# 4. the engine itself: `mugpos bench` on this device (cold start is a CPU/server figure: measured elsewhere)
left=$(( 470 - ($(date +%s) - T0) ))
if [ $left -gt 60 ]; then
  CLIP=ViT-B-32; [ "$DEVICE" = cpu ] && CLIP=none
  timeout "$left" "$VPY" -m mugpos.bench --device "$DEVICE" --quick --clip-model "$CLIP" --no-cold \
    --json >"$OUT/mugpos_bench.json" 2>"$OUT/mugpos_bench.log"
  rc=$?
  if [ $rc -eq 0 ]; then
    "$VPY" -c "import json,sys; from mugpos.bench import print_table; print_table(json.load(open(sys.argv[1])))" "$OUT/mugpos_bench.json"
  else
    say "mugpos bench exited $rc"; tail -5 "$OUT/mugpos_bench.log" >&2
  fi
else
  say "skipping mugpos bench: only ${left}s left of the 8-minute budget"
fi
say "all done"
