#!/usr/bin/env bash
# Creates the peer virtual environment benchmarks/peers/.venv (Stable-Baselines3, sbx, torch,
# JAX) used by benchmarks/peer_benchmark.py, which runs peer_sac.py in it as a subprocess, and by
# benchmarks/learning_benchmark.py, which runs peer_learning.py in it the same way.
#   bash benchmarks/peers/setup.sh          (idempotent: a second run only checks)
# torch==2.13.0 (the CPU build, see requirements.txt) goes in first, on its own, so that
# installing stable-baselines3 afterwards finds torch satisfied and pulls no other build.
# PYTHON=/path/to/python3.11 overrides the interpreter the venv is made from.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
requirements="$here/requirements.txt"
base_python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv with $("$base_python" --version 2>&1) ($(command -v "$base_python"))"
    "$base_python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --disable-pip-version-check)

torch_pin="$(grep -E '^torch==' "$requirements")"
echo "installing $torch_pin first"
"${pip[@]}" "$torch_pin"
echo "installing $requirements"
"${pip[@]}" -r "$requirements"

"$venv/bin/python" - <<'PY'
import gymnasium, jax, sbx, stable_baselines3, torch
gymnasium.make("HalfCheetah-v5").close()
print(f"check: torch {torch.__version__}, stable-baselines3 {stable_baselines3.__version__}, "
      f"sbx {sbx.__version__}, jax {jax.__version__}, gymnasium {gymnasium.__version__}: HalfCheetah-v5 OK")
PY
echo "peer venv ready: $venv"
echo "its python: $venv/bin/python"
