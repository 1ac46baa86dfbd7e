# bash completion: generated from the option tables, so it offers only what
# the commands accept, values of enumerated options, files by extension
source scripts/completion/hpcz.bash
c() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _hpcz; echo "$* -> ${COMPREPLY[*]}"; }
c hpcz quan
c hpcz quantize --mo
c hpcz quantize --mode ''
c hpcz quantize --mode = d
c hpcz prune --method ''
c hpcz convert --format ''
c hpcz calibrate --calib-t
c hpcz batch --mo
c hpcz passes --pa
c hpcz passes fold
c hpcz help pr
c hpcz inspect samples/digits_c
c hpcz quantize samples/digits_mlp.onnx --labels samples/digits/test_l
c hpcz report samples/digits_mlp.onnx samples/digits_mlp.onnx --md samples/READ
# every option offered is accepted (never "unknown option")
opts_of() { COMP_WORDS=(hpcz "$1" --); COMP_CWORD=2; COMPREPLY=(); _hpcz; printf '%s\n' "${COMPREPLY[@]}"; }
for cmd in inspect convert quantize report calibrate prune batch passes run; do
  for o in $(opts_of $cmd); do
    $HPCZ $cmd $o 2>&1 < /dev/null | grep -F "unknown option" && echo "$cmd rejects $o"
  done
done
# every value offered for an enumerated option is accepted
m=samples/digits_mlp.onnx
vals_of() { COMP_WORDS=(hpcz "$1" "$2" ''); COMP_CWORD=3; COMPREPLY=(); _hpcz; printf '%s\n' "${COMPREPLY[@]}"; }
check() { # cmd opt args...: every value of opt, with args
  local cmd=$1 opt=$2; shift 2
  for v in $(vals_of $cmd $opt); do
    $HPCZ $cmd "$@" $opt $v -q 2>&1 | grep -F "'$v' is not" && echo "$cmd rejects $opt $v"
  done
}
check quantize --mode $m --dry-run --calib random:1
check quantize --algo $m --dry-run --calib random:1
check quantize --calib-method $m --dry-run --mode static --calib random:1
check quantize --act-dtype $m --dry-run --mode static --calib random:1
check quantize --dtype $m --dry-run
check quantize --weight-dtype $m --dry-run
check quantize --clip $m --dry-run
check prune --method $m --dry-run
check prune --scope $m --dry-run
check prune --criterion $m --dry-run --method channel
check convert --format $m -o $TMP/x
check calibrate --calib-method $m --calib random:1 -o $TMP/t.json
echo done
