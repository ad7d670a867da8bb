#!/usr/bin/env bash
# Re-resolve uv.lock and write the hashed requirement files every install uses (requirements/lock/).
#
#   scripts/lock.sh                      after a dependency declaration changed; keeps locked versions
#   scripts/lock.sh --upgrade            move every package to its newest allowed version
#   scripts/lock.sh --upgrade-package X  move one
#   scripts/lock.sh --check              fail if uv.lock or requirements/lock/ is out of date (no network)
#
# Runs the uv of requirements/lock/uv.txt (.venv/bin/uv after make setup), or UV=/path/to/uv.
set -euo pipefail

cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
OUT=requirements/lock
command -v "$UV" >/dev/null || { echo "error: $UV not found; run make setup or set UV=" >&2; exit 1; }

check=0
if [ "${1:-}" = "--check" ]; then check=1; shift; fi

if [ $check = 1 ]; then
    "$UV" lock --check --offline --quiet
    dest=$(mktemp -d)
    trap 'rm -rf "$dest"' EXIT
else
    "$UV" lock --quiet "$@"
    dest=$OUT
    mkdir -p "$dest"
fi

# A built-from-source wheel cannot carry PyPI's hash; llama-cpp-python gets a file of its own,
# its sdist's hash, which setup.sh and the LLM image verify before they build it.
export_to() {  # FILE UV-EXPORT-ARGS...
    local file=$1; shift
    "$UV" export --frozen --quiet --format requirements-txt --no-header --no-annotate \
        --no-emit-workspace "$@" -o "$dest/$file"
}
export_to uv.txt --only-group lock
export_to dev.txt --all-packages --all-groups --no-emit-package llama-cpp-python
for svc in services/*/; do
    svc=$(basename "$svc")
    name=${svc//_/-}
    export_to "$name.txt" --package "clinic-voice-$name" --no-default-groups \
        --no-emit-package llama-cpp-python
done
export_to asr-gateway-cuda.txt --package clinic-voice-asr-gateway --no-default-groups --extra cuda
for group in models-asr models-tts models-llm; do
    export_to "$group.txt" --only-group "$group"
done
export_to llm-full.txt --package clinic-voice-llm --no-default-groups
awk '/^llama-cpp-python==/ {keep=1; print; next} keep && /^ / {print; next} {keep=0}' \
    "$dest/llm-full.txt" > "$dest/llama-cpp-python.txt"
rm "$dest/llm-full.txt"
# Data-only packages installed without their dependencies (their Python code needs torch), so
# outside uv.lock; --check (offline) takes the file as it is.
if [ $check = 1 ]; then
    cp "$OUT/models-nodeps.txt" "$dest/"
else
    "$UV" pip compile --quiet --no-deps --generate-hashes --no-header --no-annotate \
        --python-version 3.11 --default-index https://pypi.org/simple \
        requirements/models-nodeps.in -o "$dest/models-nodeps.txt"
fi

if [ $check = 1 ]; then
    if ! diff -ru "$OUT" "$dest" >&2; then
        echo "error: $OUT/ is out of date with uv.lock; run scripts/lock.sh" >&2
        exit 1
    fi
fi
