#!/usr/bin/env bash
# Creates the PyTorch + SpikingJelly reference environment that `npm run bench -- parity`
# and `npm run bench -- compare` race against. The environment lives outside the repository
# (it is several GiB: PyPI's Linux x86-64 torch wheel carries the CUDA runtime as dependencies,
# and PyPI has no CPU-only variant of it).
#
#   bash benchmarks/reference/setup.sh [VENV_DIR]
#
# VENV_DIR defaults to $SPIKEIR_REF_VENV, else ~/.cache/spikeir-ref-venv; the benchmarks find it
# the same way. Running it again on an existing environment only installs what is missing.
set -euo pipefail

venv="${1:-${SPIKEIR_REF_VENV:-$HOME/.cache/spikeir-ref-venv}}"
python="${PYTHON:-python3}"

if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "setup.sh: $python is $("$python" --version 2>&1); SpikingJelly 2.0 needs Python >= 3.11 (set PYTHON=...)" >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)

"${pip[@]}" install --upgrade pip
# torch pinned to the release the issue's measurements used; numpy and safetensors read and
# write the tensors the TypeScript side exchanges.
"${pip[@]}" install 'torch==2.15.*' numpy safetensors
# SpikingJelly's declared dependencies include torchvision, torchaudio, tensorboard, matplotlib,
# scipy and h5py, none of which the neuron, surrogate and layer modules import; loguru (its
# package logger) and packaging are the ones they do.
"${pip[@]}" install --no-deps 'spikingjelly==2.0.*'
"${pip[@]}" install loguru packaging

"$venv/bin/python" - <<'PY'
import torch, spikingjelly, safetensors, numpy
from spikingjelly.activation_based import neuron, surrogate, functional, layer  # noqa: F401
print(f"torch {torch.__version__}, numpy {numpy.__version__}, safetensors {safetensors.__version__}")
print(f"spikingjelly imports; threads {torch.get_num_threads()}, cuda {torch.cuda.is_available()}")
PY
echo "reference environment ready: $venv"
