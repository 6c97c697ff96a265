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
echo "==> building the book on $(hostname): $(nproc) cores, $(python -c 'import platform; print(platform.processor() or platform.machine())'), torch $(python -c 'import torch; print(torch.__version__, "cuda" if torch.cuda.is_available() else "cpu")')"
START=$(date +%s)
jupyter-book build . "$@"
echo "==> book built in $(( $(date +%s) - START )) s: $ROOT/_build/html/index.html"
echo "    per-notebook execution times: _build/html/book/execution_status.html"
