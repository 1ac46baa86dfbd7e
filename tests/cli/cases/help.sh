$HPCZ --help
$HPCZ --version | sed 's/[0-9][0-9.]*/X.Y.Z/'
$HPCZ help inspect | head -3
