#!/usr/bin/env bash
# Every CUDA test and GPU benchmark in one go, for a session that is lent a GPU (the device tool): budget < 8 minutes.
# Run from the repository root on the GPU machine:  bash benchmarks/gpu_check.sh   (results also in $OUT when set)
# It builds the native library with the CUDA kernels first (make build), then runs the CUDA-marked tests, then the
# GPU parts of the benchmarks, each under its own time limit so that one hang does not eat the budget.
# bench_ctc_beam.py --device cuda times the CUDA beam and greedy kernels against the host's CPU kernels and a plain
# GPU read, with top-1 agreement against the CPU kernel (issue #16); bench_dali.py
# runs its DALI "mixed" (GPU) part when a GPU is present; bench_svtr_attention.py --device cuda times the windowed
# attention op (bf16) against masked SDPA and the svtr_tiny bf16 training step (< 2 min). The limits sum to < 8 min.
# The CUDA kernels have never run before this script.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu_check_out}
mkdir -p "$out"
start=$(date +%s)
step() {  # step NAME SECONDS CMD...: run with a limit, keep the log, go on after a failure
  local name=$1 limit=$2; shift 2
  echo "== $name (limit ${limit}s)"
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$out/$name.log"
  echo "== $name: rc=$rc, $(( $(date +%s) - start )) s so far"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt" 2>&1; cat "$out/gpu.txt"
step build 200 make build
step cuda_tests 120 .venv/bin/python -m pytest -q -m cuda --require-native tests
step beam_search_cuda 60 .venv/bin/python benchmarks/bench_ctc_beam.py --device cuda --rounds 3
step dali 30 .venv/bin/python benchmarks/bench_dali.py
step svtr_attention 60 .venv/bin/python benchmarks/bench_svtr_attention.py --device cuda --rounds 5 --train-rounds 3
echo "gpu_check finished in $(( $(date +%s) - start )) s; logs in $out/"
