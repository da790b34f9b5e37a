#!/usr/bin/env bash
# The key table in docs/RECIPES.md must equal what the binary generates from its switch table.
set -euo pipefail
bin=$1 doc=$2
want=$("$bin" keys --markdown)
have=$(sed -n '/<!-- keys:begin -->/,/<!-- keys:end -->/p' "$doc" | sed '1d;$d')
if [[ "$want" != "$have" ]]; then
  echo "docs/RECIPES.md is out of date with the switch table; regenerate the section between the"
  echo "keys:begin/keys:end markers with: build/algoprog keys --markdown"
  diff <(echo "$have") <(echo "$want") | head -20
  exit 1
fi
echo "docs/RECIPES.md key table matches the switch table"
