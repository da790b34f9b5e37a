#!/usr/bin/env bash
# fortunes: the fortune cookies of Debian's fortunes and fortunes-min packages
# (jokes, quotations, one-liners, definitions, some verse; 43 files).
# Licence: BSD per Debian's copyright file; quotations of mixed provenance.
# Document unit: one cookie (the text between two "%" lines), files in sorted order.
# Usage: bash scripts/corpora/fortunes.sh OUT_FILE   (~2.6 MB, UTF-8; a few
# cookies keep their backspace "overstriking" bytes)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/corpora/lib.sh
source "$here/lib.sh"

out=${1:-}
begin "$out"   # usage check, $TMPD, $OUT_TMP
need_pkgs fortunes fortunes-min

# The cookie files are the plain files the two packages put in the fortunes dir;
# *.dat are strfile indexes, *.u8 are symlinks to the same files.
mapfile -t files < <(dpkg -L fortunes fortunes-min | grep '^/usr/share/games/fortunes/[^/]*$' |
  grep -v '\.dat$\|\.u8$' | LC_ALL=C sort -u)
((${#files[@]} > 0)) || die "no cookie files found in fortunes/fortunes-min"
log "${#files[@]} cookie files"

# A "%" line ends a cookie, and so does the end of a file.
perl -ne '
  tr/\x1e//d;
  if (/^%\s*$/) { print "\x1e\n"; next; }
  print;
  print "\x1e\n" if eof;
' "${files[@]}" | normalize_docs 0 > "$OUT_TMP"
finish "$out" "$OUT_TMP"
