#!/usr/bin/env bash
# Run the whole test suite, including every notebook executed with papermill at scale="smoke".
#
#   bash scripts/run_tests.sh            # all tests
#   bash scripts/run_tests.sh -k notebook  # extra arguments go to pytest
#
# Creates or reuses ./.venv and installs the project first (see scripts/_venv.sh).
# Optional environment: NANOWIRE_UTILS_SAMPLES (folder with the real sample images),
# NANOWIRE_UTILS_OFFLINE=1 (never download), PYTEST_WORKERS (default 2; 0 runs serially).
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"

# Each test process uses one thread for torch/BLAS and two processes share the 2 cores of the CI
# machine. Measured on the project's (shared, busy) 2-core machine, whole suite: 134 s with
# -n 2, 130 s serially; on a machine with 2 idle cores the two workers are what can overlap.
# Figures are not looked at in tests: a non-interactive backend.
export MPLBACKEND="${MPLBACKEND:-Agg}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
WORKERS="${PYTEST_WORKERS:-2}"
if [ "$WORKERS" = "0" ]; then PARALLEL=(); else PARALLEL=(-n "$WORKERS"); fi

# Browser tests (the book's HTML, the Voila app) drive Debian's Chromium headless. Install it when
# missing and we may (root, apt-get present); otherwise those tests skip and say why.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Debian's chromium for the browser tests"
    apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1) \
        || echo "==> could not install chromium: browser tests will skip"
fi

echo "==> python $(python -c 'import sys; print(sys.version.split()[0])'), torch $(python -c 'import torch; print(torch.__version__)'), $(nproc) cores"
echo "==> NANOWIRE_UTILS_SAMPLES=${NANOWIRE_UTILS_SAMPLES:-<unset: tests that need the real images are skipped>}"
START=$(date +%s)
set +e
python -m pytest "${PARALLEL[@]}" -ra --durations=15 "$@"
STATUS=$?
set -e
echo "==> pytest exit status $STATUS after $(( $(date +%s) - START )) s"
exit $STATUS
