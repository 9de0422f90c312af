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
# OpenMP threads that wait by sleeping, not spinning: two workers' torch thread pools share the cores, and spinning
# ones made two overlapped torch loops 6x slower each (9.5 s alone, 63 s side by side; 15 s each with PASSIVE).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
# Two pytest-xdist workers (STUDIO_TEST_WORKERS to change): the real-model tests on one, the browser tests on the
# other, the quick ones around them (tests/conftest.py); they overlap one test's waits with another's work.
python3 -m pytest -n "${STUDIO_TEST_WORKERS:-2}" --dist loadgroup "$@"
