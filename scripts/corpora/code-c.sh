#!/usr/bin/env bash
# code-c: C source of a Linux kernel subset: the .c and .h files of the kernel/ and
# mm/ directories of Debian's linux-source-6.1 (Linux 6.1 LTS).
# Licence: GPL-2.0 (a few files dual-licensed BSD/LGPL/MIT, per their SPDX lines).
# Document unit: one source file, files in LC_ALL=C sorted path order; each file's
# bytes are kept as they are (a missing final newline is added).
# Usage: bash scripts/corpora/code-c.sh OUT_FILE   (~16.7 MB, UTF-8)
# Installs linux-source-6.1 (a 139 MB .deb) if missing; extracts only the two dirs.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/corpora/lib.sh
source "$here/lib.sh"

out=${1:-}
begin "$out"   # usage check, $TMPD, $OUT_TMP
need_pkgs linux-source-6.1 xz-utils
tarball=/usr/src/linux-source-6.1.tar.xz
[[ -f $tarball ]] || die "$tarball not found (is linux-source-6.1 installed?)"

log "extracting kernel/ and mm/ from $tarball"
tar -xJf "$tarball" -C "$TMPD" --wildcards 'linux-source-6.1/kernel/*' 'linux-source-6.1/mm/*' ||
  die "tar could not extract kernel/ and mm/ from $tarball"

# All paths share the prefix $TMPD/linux-source-6.1/, so this is the sorted order of
# kernel/... and mm/... whatever $TMPD is.
src=$TMPD/linux-source-6.1
mapfile -d '' files < <(find "$src/kernel" "$src/mm" -type f -name '*.[ch]' -print0 | LC_ALL=C sort -z)
((${#files[@]} > 0)) || die "no .c/.h files found under kernel/ and mm/"
log "${#files[@]} files"

# One document per file: whole file, 0x1E dropped, final newline ensured.
perl -e '
  local $/;
  for my $f (@ARGV) {
    open(my $fh, "<:raw", $f) or die "code-c: cannot read $f: $!\n";
    my $t = <$fh> // "";
    close $fh;
    $t =~ tr/\x1e//d;
    next unless length $t;
    $t .= "\n" unless $t =~ /\n\z/;
    print $t, "\x1e\n";
  }
' "${files[@]}" > "$OUT_TMP"
finish "$out" "$OUT_TMP"
