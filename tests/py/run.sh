#!/usr/bin/env bash
# Runs a Python test in the test virtual environment that scripts/test.sh
# creates (HPCZ_TEST_PYTHON). Without it the test is skipped (exit 77), and
# says so: scripts/test.sh always sets it, so CI never skips.
#   tests/py/run.sh SCRIPT ARGS...
set -u
if [ -z "${HPCZ_TEST_PYTHON:-}" ] || [ ! -x "$HPCZ_TEST_PYTHON" ]; then
  echo "SKIP: HPCZ_TEST_PYTHON is not set (run scripts/test.sh, which creates the venv)"
  exit 77
fi
# every temporary folder the test makes (tempfile honours TMPDIR) goes in one
# folder of its own, removed afterwards whatever the outcome
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hpcz-pytest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 143' TERM INT
TMPDIR="$tmp" "$HPCZ_TEST_PYTHON" "$@"
