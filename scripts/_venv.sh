# Sourced by build_book.sh and run_tests.sh: create or reuse ./.venv and install the project.
#
# The install uses ci/constraints.txt, which pins the torch/torchvision releases of the project's
# reference machines. A stamp file skips the (slow) pip step when neither pyproject.toml nor the
# constraints changed since the last install. PYTHON selects the interpreter for a new venv.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

if [ ! -x "$PY" ]; then
    echo "==> creating virtual environment $VENV"
    "${PYTHON:-python3}" -m venv "$VENV"
fi
"$PY" - <<'PYCHECK'
import sys
if sys.version_info < (3, 10):
    sys.exit(f"nanowire-utils needs Python >= 3.10, the venv has {sys.version.split()[0]}: "
             "delete .venv and rerun with PYTHON=python3.11")
PYCHECK

STAMP="$VENV/.nanowire_utils_install"
WANT="$(cat pyproject.toml ci/constraints.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ] || ! "$PY" -c "import nanowire_utils, torch, papermill" 2>/dev/null; then
    echo "==> installing nanowire-utils with its test and book extras (first time: a few minutes)"
    "$PY" -m pip install --disable-pip-version-check -q -c ci/constraints.txt -e '.[test]'
    echo "$WANT" > "$STAMP"
fi

# detectron2, the optional engine: no registry serves it. CI machines keep a wheel built from the
# project's pinned commit beside the clone (../shared/wheels, with a README giving its sha256 and the
# torch it was built against); install it when present, so the detectron2 tests run instead of
# skipping. Checked first (sha256, Python and torch versions: one line and skip when they do not
# fit); a stamp keeps re-runs fast. Without the wheel everything else works.
D2_WHEEL="$(ls "$ROOT"/../shared/wheels/detectron2-*.whl 2>/dev/null | head -n 1 || true)"
D2_STAMP="$VENV/.detectron2_wheel"
if [ -n "$D2_WHEEL" ] && [ -f "$D2_STAMP" ] && [ "$(head -n 1 "$D2_STAMP")" = "$D2_WHEEL $WANT" ]; then
    sed -n 2p "$D2_STAMP"  # the reason it was skipped, if it was
elif [ -n "$D2_WHEEL" ]; then
    if D2_CHECK="$("$PY" -m nanowire_utils.maskrcnn.detectron2_engine check-wheel "$D2_WHEEL" 2>/dev/null | tail -n 1)"; then
        echo "==> installing detectron2 from $D2_WHEEL (${D2_CHECK#*: })"
        if "$PY" -m pip install --disable-pip-version-check -q -c ci/constraints.txt "$D2_WHEEL" "setuptools<82"; then
            if D2_OK="$("$PY" -m nanowire_utils.maskrcnn.detectron2_engine available 2>/dev/null | tail -n 1)"; then
                echo "$D2_WHEEL $WANT" > "$D2_STAMP"
            else
                echo "==> detectron2 installed but does not import: $D2_OK (its tests will skip)"
            fi
        else
            echo "==> could not install $D2_WHEEL (its tests will skip)"
        fi
    else
        printf '%s\n%s\n' "$D2_WHEEL $WANT" "==> detectron2 wheel not installed: ${D2_CHECK:-the check failed}" > "$D2_STAMP"
        sed -n 2p "$D2_STAMP"
    fi
fi

# A kernel named "python3" inside the venv that runs the venv's own interpreter, so that
# papermill and Jupyter Book execute the notebooks with the installed package.
"$PY" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (nanowire-utils)" >/dev/null

export PATH="$VENV/bin:$PATH"
