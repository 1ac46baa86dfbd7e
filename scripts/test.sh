#!/usr/bin/env bash
# Installs whatever is missing, builds a debug build with AddressSanitizer and
# UBSan, creates the test virtual environment (pinned PyPI packages), and runs
# every test. Ends with a line "N passed, N failed, N skipped".
#   scripts/test.sh [meson test args...]   e.g. scripts/test.sh --suite cli
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

scripts/install-deps.sh --test

# Test virtual environment: the independent ONNX reader/checker and the
# reference runtime. Recreated when the pins change.
venv=.venv-test
req=tests/requirements.txt
stamp="$venv/.req-$(sha256sum "$req" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
  touch "$stamp"
fi
export HPCZ_TEST_PYTHON="$root/$venv/bin/python"

build=build-test
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=debug -Db_sanitize=address,undefined >/dev/null
fi
ninja -C "$build" >/dev/null

set +e
meson test -C "$build" --print-errorlogs "$@" 2>&1 | tee "$build/test-output.txt"
rc=${PIPESTATUS[0]}
set -e
summary() { sed -n "s/^$1: *\([0-9]*\).*/\1/p" "$build/test-output.txt" | tail -1; }
ok=$(summary Ok); fail=$(summary Fail); skip=$(summary Skipped)
timeout=$(summary Timeout); xpass=$(summary 'Unexpected Pass')
failed=$(( ${fail:-0} + ${timeout:-0} + ${xpass:-0} ))
echo "${ok:-0} passed, ${failed} failed, ${skip:-0} skipped"
if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
  echo "meson test exited with status $rc" >&2
  exit "$rc"
fi
exit $(( failed > 0 ? 1 : 0 ))
