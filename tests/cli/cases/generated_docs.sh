# the man page and the bash completion are generated from the option tables;
# the committed copies and the ones meson builds (and installs) must match
# (by the build tool hpcz-gen-docs, built next to hpcz)
build=$(dirname "$HPCZ")
gen=$build/hpcz-gen-docs
$gen man | diff -u docs/hpcz.1 - && echo "docs/hpcz.1 is up to date"
$gen bash | diff -u scripts/completion/hpcz.bash - && echo "scripts/completion/hpcz.bash is up to date"
cmp docs/hpcz.1 "$build/docs/hpcz.1" && echo "built man page: same"
cmp scripts/completion/hpcz.bash "$build/scripts/completion/hpcz" && echo "built completion: same"
$gen html; echo "hpcz-gen-docs html: $?"
# every option of each command is in the man page, under its command
sed 's/\\-/-/g' docs/hpcz.1 > $TMP/man
for c in inspect convert quantize report calibrate prune batch passes run; do
  grep -qF ".SS \"hpcz $c " $TMP/man || echo "man page lacks $c"
  # the command's section: from its heading to the next
  awk -v h=".SS \"hpcz $c " 'index($0, h) == 1 {on = 1; next} /^\.SS/ {on = 0} on' $TMP/man > $TMP/section
  $HPCZ $c --help | grep -oE -- '^ +(-[a-z], )?--[a-z0-9-]+' | grep -oE -- '--[a-z0-9-]+' | while read -r o; do
    grep -qF -- "$o" $TMP/section || echo "man page lacks $c $o"
  done
done
echo "checked every option"
