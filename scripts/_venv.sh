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

# A kernel named "python3" inside the venv that runs the venv's own interpreter, so that
# papermill and Jupyter Book execute the notebooks with the installed package.
"$PY" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (nanowire-utils)" >/dev/null

export PATH="$VENV/bin:$PATH"
