#!/usr/bin/env bash
# austen: Jane Austen's six novels (public domain, 1811-1818) from Debian's r-cran-janeaustenr.
# Usage: austen.sh OUT.txt   (~4.0 MB of UTF-8/ASCII prose; recipe measured in shared/corpora.md)
set -euo pipefail
out=${1:?usage: austen.sh OUT.txt}
pkgs=(r-cran-janeaustenr)
need=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "austen: needs ${need[*]}; run as root: apt-get install -y --no-install-recommends ${need[*]}" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}"
fi
tmp="$out.tmp"
Rscript -e 'library(janeaustenr); writeLines(c(sensesensibility,prideprejudice,mansfieldpark,emma,northangerabbey,persuasion), commandArgs(TRUE)[1])' "$tmp"
[[ -s "$tmp" ]] || { echo "austen: Rscript wrote nothing" >&2; exit 1; }
mv "$tmp" "$out"
