#!/usr/bin/env bash
# Build the Jupyter Book with every notebook executed at its CPU default (scale="cpu").
#
#   bash scripts/build_book.sh                 # HTML in _build/html/index.html
#   bash scripts/build_book.sh --force         # re-execute every notebook (ignore the execution cache)
#   bash scripts/build_book.sh --scale smoke   # notebooks at scale="smoke" (seconds; CI's HTML check)
#                                              #   -> _build/smoke/_build/html/index.html
#   bash scripts/build_book.sh --check         # then open every page in headless Chromium
#                                              #   (scripts/check_book_html.py; screenshots beside the HTML)
#   bash scripts/build_book.sh --force --record
#                                              # then write each notebook's run time to
#                                              #   benchmarks/results/book_build.json (scripts/book_timings.py),
#                                              #   which the book's run-time tables quote: record on quiet cores
#
# Creates or reuses ./.venv and installs the project first (see scripts/_venv.sh). Notebooks are
# executed in the order of _toc.yml; a chapter that trains reuses a model already saved under
# runs/. The build needs no network. Other arguments go to `jupyter-book build`.
#
# Execution cache (scale="cpu"): Jupyter Book keeps executed notebooks in _build/.jupyter_cache
# (`execute_notebooks: cache` in _config.yml), so a rebuild after a prose edit re-executes only
# the notebooks whose code changed. The cache looks at the notebooks' code only: after a change
# to the nanowire_utils package, rebuild with --force. Other scales are executed with papermill
# into a staging copy of the book (scripts/stage_book.py), every time.
SCALE="${BOOK_SCALE:-cpu}"
FORCE=0
CHECK=0
RECORD=0
JB_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --scale) SCALE="$2"; shift 2 ;;
        --scale=*) SCALE="${1#--scale=}"; shift ;;
        --force) FORCE=1; shift ;;
        --check) CHECK=1; shift ;;
        --record) RECORD=1; shift ;;
        *) JB_ARGS+=("$1"); shift ;;
    esac
done
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
if [ "$RECORD" = "1" ] && { [ "$SCALE" != "cpu" ] || [ "$FORCE" != "1" ]; }; then
    echo "ERROR: --record needs a full cpu build: bash scripts/build_book.sh --force --record" >&2
    exit 2
fi
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "")
MODEL_REUSED=$([ -f runs/cpu/mask_rcnn/model_final.pth ] && echo yes || echo no)
START=$(date +%s)
if [ "$SCALE" = "cpu" ]; then
    if [ "$FORCE" = "1" ]; then
        echo "==> --force: emptying the execution cache _build/.jupyter_cache"
        rm -rf _build/.jupyter_cache
        JB_ARGS+=(--all)
    fi
    jupyter-book build . ${JB_ARGS[@]+"${JB_ARGS[@]}"}
    HTML=_build/html
else
    python scripts/stage_book.py --scale "$SCALE" --stage "_build/$SCALE"
    jupyter-book build "_build/$SCALE" ${JB_ARGS[@]+"${JB_ARGS[@]}"}
    HTML="_build/$SCALE/_build/html"
fi
# Every chapter draws figures: a chapter page without one means the figures were lost.
for page in "$HTML"/notebooks/*.html; do
    if ! grep -q '_images/' "$page"; then
        echo "ERROR: $page has no figures (is a non-inline matplotlib backend set?)" >&2
        exit 1
    fi
done
TOTAL=$(( $(date +%s) - START ))
echo "==> book built at scale=$SCALE in $TOTAL s: $ROOT/$HTML/index.html"
echo "    per-notebook execution times: $HTML/book/execution_status.html"
if [ "$RECORD" = "1" ]; then
    python scripts/book_timings.py --out benchmarks/results/book_build.json --total-seconds "$TOTAL" \
        --model-reused "$MODEL_REUSED" ${LOAD_BEFORE:+--load-before $LOAD_BEFORE}
fi
if [ "$CHECK" = "1" ]; then
    python scripts/check_book_html.py "$HTML" --screenshots "$(dirname "$HTML")/screenshots"
fi
