#!/usr/bin/env bash
# CLI golden tests: each tests/cli/cases/NAME.sh runs from the source root with
# $HPCZ (the binary) and $TMP (an empty scratch folder) set; its stdout, stderr
# and exit status must equal NAME.stdout, NAME.stderr and NAME.exit.
#   tests/cli/run.sh HPCZ [--update] [NAME...]
# --update rewrites the expected files from the current behaviour (review the
# diff before committing).
set -uo pipefail
hpcz=$(realpath "$1"); shift
update=0
if [ "${1:-}" = "--update" ]; then update=1; shift; fi
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
cases=("$@")
if [ ${#cases[@]} -eq 0 ]; then
  for f in "$here"/cases/*.sh; do cases+=("$(basename "$f" .sh)"); done
fi
pass=0; fail=0
for name in "${cases[@]}"; do
  script="$here/cases/$name.sh"
  tmp=$(mktemp -d)
  out=$(mktemp); err=$(mktemp)
  HPCZ="$hpcz" TMP="$tmp" bash -o pipefail "$script" >"$out" 2>"$err" </dev/null
  code=$?
  # scratch paths differ per run: show them as $TMP
  sed -i "s|$tmp|\$TMP|g" "$out" "$err"
  if [ $update = 1 ]; then
    cp "$out" "$here/cases/$name.stdout"; cp "$err" "$here/cases/$name.stderr"
    echo "$code" > "$here/cases/$name.exit"
    echo "updated $name"
  else
    ok=1
    if ! diff -u "$here/cases/$name.stdout" "$out" > "$tmp.diff" 2>&1; then ok=0; echo "--- $name: stdout differs"; cat "$tmp.diff"; fi
    if ! diff -u "$here/cases/$name.stderr" "$err" > "$tmp.diff" 2>&1; then ok=0; echo "--- $name: stderr differs"; cat "$tmp.diff"; fi
    want=$(cat "$here/cases/$name.exit" 2>/dev/null || echo missing)
    if [ "$want" != "$code" ]; then ok=0; echo "--- $name: exit status $code, expected $want"; fi
    if [ $ok = 1 ]; then pass=$((pass+1)); echo "PASS $name"; else fail=$((fail+1)); echo "FAIL $name"; fi
    rm -f "$tmp.diff"
  fi
  rm -rf "$tmp" "$out" "$err"
done
echo "$pass passed, $fail failed"
[ $fail = 0 ]
