#!/usr/bin/env bash
# Build the Jupyter Book with every notebook executed at its CPU default (scale="cpu").
#
#   bash scripts/build_book.sh        # HTML in _build/html/index.html
#
# Creates or reuses ./.venv and installs the project first (see scripts/_venv.sh). Notebooks are
# executed in the order of _toc.yml; a chapter that trains reuses a model already saved under
# runs/. The build needs no network. Extra arguments go to `jupyter-book build`.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"

# The real sample images: a local copy beside the clone (the project's machines) avoids a download.
if [ -z "${NANOWIRE_UTILS_SAMPLES:-}" ] && [ -d "$ROOT/../shared/data/v2o5_sample_images" ]; then
    export NANOWIRE_UTILS_SAMPLES="$(cd "$ROOT/../shared/data/v2o5_sample_images" && pwd)"
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
# A non-interactive MPLBACKEND (e.g. Agg) in the environment would reach the kernels and stop
# matplotlib's inline display: the chapters would build without a single figure.
unset MPLBACKEND
echo "==> building the book on $(hostname): $(nproc) cores, $(python -c 'import platform; print(platform.processor() or platform.machine())'), torch $(python -c 'import torch; print(torch.__version__, "cuda" if torch.cuda.is_available() else "cpu")')"
START=$(date +%s)
jupyter-book build . "$@"
# Every chapter draws figures: a chapter page without one means the figures were lost.
for page in _build/html/notebooks/*.html; do
    if ! grep -q '_images/' "$page"; then
        echo "ERROR: $page has no figures (is a non-inline matplotlib backend set?)" >&2
        exit 1
    fi
done
echo "==> book built in $(( $(date +%s) - START )) s: $ROOT/_build/html/index.html"
echo "    per-notebook execution times: _build/html/book/execution_status.html"
