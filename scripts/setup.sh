#!/usr/bin/env bash
# Installs everything edgeviz needs on a fresh Debian 12 machine: the cross toolchain, QEMU, and a
# virtual environment at .venv with exact versions from constraints.txt (torch 2.13.0 CPU).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    gcc g++ make binutils-arm-none-eabi gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm >/dev/null

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/python -m pip install -q -c constraints.txt -e ".[test]"
echo "edgeviz installed: $(.venv/bin/edgeviz --version 2>/dev/null || echo '.venv/bin/edgeviz')"
