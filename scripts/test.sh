#!/usr/bin/env bash
# Installs everything the test suite needs (Debian chromium for the browser tests, pip packages) and runs it.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow and not browser"` for the quick suite.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -r requirements-dev.txt

export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python3 -m pytest "$@"
