#!/usr/bin/env bash
# One-command set-up of adpe_mm on a fresh Debian/Python 3.11 machine (idempotent).
#
#   bash tools/install.sh
#
# Creates (or reuses) the virtual environment $ADPE_VENV (default: .venv in the repo), installs every pin of
# requirements.txt, builds mmcv with compiled ops from its source archive when no working build is installed
# (the wheel is cached in $ADPE_CACHE, default ~/.cache/adpe_mm, so a recreated venv needs no rebuild),
# installs adpe_mm in editable mode and assembles the embedded real-photo data set under data/.
# A second run with nothing changed finishes in seconds. Any failing step stops the script with its reason.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${ADPE_VENV:-$ROOT/.venv}"
CACHE="${ADPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/adpe_mm}"
REQ="$ROOT/requirements.txt"
BASE_PYTHON="${PYTHON:-python3}"

step() { printf '\n[install] %s\n' "$*"; }
die() { printf '\n[install] FAILED: %s\n' "$*" >&2; exit 1; }
trap 'die "command \"$BASH_COMMAND\" exited with $? (line $LINENO)"' ERR

pin() {  # pin NAME -> the requirement line of NAME in requirements.txt
    local line
    line="$(grep -E "^$1([=<>!~ ]|$)" "$REQ" | head -n 1)" || die "requirements.txt has no pin for $1"
    echo "$line"
}

# --- 1. virtual environment -------------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    step "creating virtual environment $VENV"
    "$BASE_PYTHON" -m venv "$VENV" || die "could not create a venv with $BASE_PYTHON (is python3-venv installed?)"
fi
PY="$VENV/bin/python"
"$PY" -c 'import sys; assert sys.version_info[:2] >= (3, 10), sys.version' \
    || die "$PY is older than Python 3.10"

STAMP="$VENV/.adpe_mm_install"
want_stamp="$(cat "$REQ" setup.py tools/install.sh | sha256sum | cut -d' ' -f1)"
mmcv_ok() {
    local want
    want="$(pin mmcv | sed -E 's/^mmcv==//')"
    "$PY" - "$want" >/dev/null 2>&1 <<'PYEOF'
import sys
import mmcv
import mmcv.ops  # needs the compiled mmcv._ext
assert mmcv.__version__ == sys.argv[1], mmcv.__version__
PYEOF
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want_stamp" ] && mmcv_ok; then
    step "python packages already installed (requirements unchanged, mmcv.ops works)"
else
    # --- 2. build tools and torch (mmcv compiles against the installed torch) -------------------------------
    step "installing build tools and torch"
    "$PY" -m pip install -q --upgrade "pip<26" wheel "$(pin setuptools)"
    "$PY" -m pip install -q "$(pin torch)" "$(pin torchvision)"

    # --- 3. mmcv with compiled ops -----------------------------------------------------------------------
    if mmcv_ok; then
        step "mmcv with compiled ops already works, not rebuilding"
    else
        MMCV_PIN="$(pin mmcv)"
        MMCV_VER="${MMCV_PIN#mmcv==}"
        PYTAG="$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
        TORCHVER="$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')"
        WHEELDIR="$CACHE/wheels/torch-$TORCHVER"
        mkdir -p "$WHEELDIR"
        wheel="$(ls "$WHEELDIR"/mmcv-"$MMCV_VER"-"$PYTAG"-*.whl 2>/dev/null | head -n 1 || true)"
        if [ -z "$wheel" ]; then
            step "building $MMCV_PIN with CPU ops from source (8-17 minutes on 2 cores)"
            work="$(mktemp -d)"
            "$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation -d "$work" "$MMCV_PIN"
            tar -xzf "$work"/mmcv-"$MMCV_VER".tar.gz -C "$work"
            src="$work/mmcv-$MMCV_VER"
            # torch >= 2.13 headers need C++20; mmcv 2.1.0 hard-codes c++17.
            grep -q -- '-std=c++17' "$src/setup.py" || die "mmcv setup.py no longer contains -std=c++17; check the patch"
            sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
            MMCV_WITH_OPS=1 FORCE_CUDA="${FORCE_CUDA:-0}" MAX_JOBS="${MAX_JOBS:-2}" \
                "$PY" -m pip wheel -q --no-build-isolation --no-deps -w "$WHEELDIR" "$src"
            rm -rf "$work"
            wheel="$(ls "$WHEELDIR"/mmcv-"$MMCV_VER"-"$PYTAG"-*.whl | head -n 1)"
        else
            step "using cached mmcv wheel $wheel"
        fi
        "$PY" -m pip install -q --no-deps --force-reinstall "$wheel"
    fi

    # --- 4. the rest of the pins and adpe_mm itself --------------------------------------------------------
    step "installing the pinned OpenMMLab stack and adpe_mm"
    grep -vE '^(foolbox)([=<>!~ ]|$)' "$REQ" > "$VENV/.adpe_requirements.txt"
    "$PY" -m pip install -q -r "$VENV/.adpe_requirements.txt"
    "$PY" -m pip install -q --no-deps "$(pin foolbox)"
    "$PY" -m pip install -q --no-deps --no-build-isolation -e "$ROOT"
    mmcv_ok || die "mmcv.ops does not import after the install (see 'python -c \"import mmcv.ops\"')"
    echo "$want_stamp" > "$STAMP"
fi

# --- 5. the embedded real-photo data set -------------------------------------------------------------------
step "assembling the embedded data set under data/"
"$PY" tools/data/build_embedded_data.py --out "$ROOT/data"

step "done. Activate with: source $VENV/bin/activate"
