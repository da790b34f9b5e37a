#!/usr/bin/env bash
# The key table in docs/RECIPES.md must equal what the binary generates from its switch table.
# usage: check_docs.sh ALGOPROG RECIPES.md [--fix]   (--fix rewrites the section in place)
set -euo pipefail
bin=$1 doc=$2
want=$("$bin" keys --markdown)
have=$(sed -n '/<!-- keys:begin -->/,/<!-- keys:end -->/p' "$doc" | sed '1d;$d')
if [[ "$want" == "$have" ]]; then
  echo "docs/RECIPES.md key table matches the switch table"
  exit 0
fi
if [[ "${3:-}" == "--fix" ]]; then
  { sed -n '1,/<!-- keys:begin -->/p' "$doc"; echo "$want"; sed -n '/<!-- keys:end -->/,$p' "$doc"; } > "$doc.tmp"
  mv "$doc.tmp" "$doc"
  echo "docs/RECIPES.md key table regenerated"
  exit 0
fi
echo "docs/RECIPES.md is out of date with the switch table; regenerate it with:"
echo "  tests/check_docs.sh build/algoprog docs/RECIPES.md --fix"
diff <(echo "$have") <(echo "$want") | head -20
exit 1
