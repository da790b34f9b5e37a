#!/usr/bin/env bash
# austen: Jane Austen's six novels (Sense and Sensibility, Pride and Prejudice,
# Mansfield Park, Emma, Northanger Abbey, Persuasion) from Debian's
# r-cran-janeaustenr, read with Rscript.
# Licence: texts public domain (1811-1818); package MIT.
# Document unit: one chapter. A chapter starts at a line such as "CHAPTER 1",
# "Chapter 1" or "CHAPTER I"; a "VOLUME II" line joins the chapter after it, and the
# title page joins the first chapter of its novel.
# Usage: bash scripts/corpora/austen.sh OUT_FILE   (~4.0 MB, ASCII)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/corpora/lib.sh
source "$here/lib.sh"

# austen_novels DIR: write the six novels as DIR/1.txt .. DIR/6.txt (publication order).
austen_novels() {
  local dir=$1
  need_pkgs r-cran-janeaustenr
  mkdir -p "$dir"
  Rscript -e 'suppressPackageStartupMessages(library(janeaustenr))
    books <- list(sensesensibility, prideprejudice, mansfieldpark, emma, northangerabbey, persuasion)
    for (i in seq_along(books)) writeLines(books[[i]], file.path(commandArgs(TRUE)[1], paste0(i, ".txt")))' \
    "$dir" || die "Rscript failed to read janeaustenr"
}

# austen_docs DIR: print the novels in DIR as chapter documents.
austen_docs() {
  split_at '^(?:CHAPTER|Chapter|VOLUME) +(?:[0-9]+|[IVXLC]+)\.? *$' "$1"/[1-6].txt
}

# Run only when executed, so that pd-prose.sh can source this file for the functions.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  out=${1:-}
  begin "$out"   # usage check, $TMPD, $OUT_TMP
  austen_novels "$TMPD/austen"
  austen_docs "$TMPD/austen" | normalize_docs 0 > "$OUT_TMP"
  finish "$out" "$OUT_TMP"
fi
