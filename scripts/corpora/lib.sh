#!/usr/bin/env bash
# lib.sh: shared helpers for the corpus recipes in scripts/corpora/ (sourced, not run).
#
# Every recipe `bash scripts/corpora/NAME.sh OUT` writes OUT as a sequence of
# documents, each followed by the two bytes "\x1e\n" (ASCII record separator 0x1E,
# then newline). Documents never contain 0x1E themselves. Recipes write OUT.tmp and
# rename it at the end, so a failed run never leaves a partial OUT.

# Name used as the prefix of every message: the recipe's file name without .sh.
CORPUS_NAME=${CORPUS_NAME:-$(basename "${BASH_SOURCE[1]:-$0}" .sh)}

die() {
  echo "$CORPUS_NAME: $*" >&2
  exit 1
}

log() {
  echo "$CORPUS_NAME: $*" >&2
}

# need_pkgs PKG...: make sure these Debian packages are installed. As root the
# missing ones are installed (apt-get update runs at most once per recipe run);
# otherwise the recipe stops and says which command to run.
_apt_updated=0
apt_update_once() {
  ((_apt_updated)) && return 0
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 ||
    die "apt-get update failed"
  _apt_updated=1
}

need_pkgs() {
  local p missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  if [[ $(id -u) -ne 0 ]]; then
    die "needs ${missing[*]}; run as root: apt-get install -y --no-install-recommends ${missing[*]}"
  fi
  log "installing ${missing[*]}"
  apt_update_once
  # dpkg is chatty even with -qq: keep its output, and show it only on failure.
  local aptlog
  aptlog=$(mktemp) || die "mktemp failed"
  if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends "${missing[@]}" >"$aptlog" 2>&1; then
    cat "$aptlog" >&2
    rm -f "$aptlog"
    die "apt-get install ${missing[*]} failed"
  fi
  rm -f "$aptlog"
}

# unpack_debs DIR PKG...: download the .deb files of PKGs (without installing them or
# their dependencies) and unpack their contents under DIR with dpkg-deb -x. Used for
# R data packages whose dependency chains are heavy but whose data files are not.
unpack_debs() {
  local dir=$1 deb
  shift
  mkdir -p "$dir/debs"
  # APT::Sandbox::User=root: the private temp dir is not readable by the _apt user.
  if ! (cd "$dir/debs" && apt-get -o APT::Sandbox::User=root download -qq "$@" >&2); then
    [[ $(id -u) -eq 0 ]] || die "apt-get download $* failed (apt lists may be missing; run as root: apt-get update)"
    apt_update_once
    (cd "$dir/debs" && apt-get -o APT::Sandbox::User=root download -qq "$@" >&2) ||
      die "apt-get download $* failed"
  fi
  for deb in "$dir"/debs/*.deb; do
    dpkg-deb -x "$deb" "$dir/root" || die "dpkg-deb -x $deb failed"
  done
}

# begin OUT: start a recipe run writing OUT. Checks that OUT's directory exists,
# sets OUT_TMP=OUT.tmp (the recipe writes there, then calls finish) and creates a
# private temporary directory $TMPD. On exit $TMPD is removed, and so is OUT_TMP if
# the run failed before finish renamed it.
begin() {
  [[ -n ${1:-} ]] || die "usage: $CORPUS_NAME.sh OUT_FILE"
  [[ -d $(dirname "$1") ]] || die "directory of $1 does not exist"
  OUT_TMP=$1.tmp
  TMPD=$(mktemp -d "${TMPDIR:-/tmp}/corpus-$CORPUS_NAME.XXXXXX") || die "mktemp failed"
  trap _cleanup EXIT
}
_cleanup() {
  rm -rf "$TMPD"
  rm -f "$OUT_TMP"
}

# human BYTES: print a size as "4.1 MB" (decimal megabytes).
human() {
  awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'
}

# fsize FILE: size of FILE in bytes.
fsize() {
  stat -c %s "$1"
}

# split_at REGEX [FILE...]: print the text of each FILE (or stdin) as documents.
# A new document starts at each heading line (a line matching the Perl REGEX),
# but only once the text since the previous heading holds 200 non-blank bytes: so
# text before a file's first heading (a title page) joins the first document, and
# a "PART TWO" line followed by "CHAPTER I" makes one document. Each file ends a
# document. 0x1E bytes are dropped; each document is followed by "\x1e\n".
split_at() {
  local re=$1
  shift
  perl -e '
    my $re = qr/$ARGV[0]/; shift @ARGV;
    my ($doc, $since) = ("", -1);   # $since: non-blank bytes after the last heading
    sub flush { print $doc, ($doc =~ /\n\z/ ? "" : "\n"), "\x1e\n" if $doc =~ /\S/; $doc = ""; }
    while (my $line = <>) {
      $line =~ tr/\x1e//d;
      if ($line =~ $re) {
        flush() if $since >= 200;
        $since = 0;
      } elsif ($since >= 0) {
        $since += () = $line =~ /\S/g;
      }
      $doc .= $line;
      if (eof) { flush(); $since = -1; }   # eof without parens: end of each file
    }
  ' "$re" "$@"
}

# normalize_docs [MAX]: read documents terminated by "\x1e\n" on stdin and write
# them back cleaned up: leading blank lines and trailing white space removed, each
# document ends with one newline, empty documents dropped. With MAX > 0, a document
# longer than MAX bytes is cut into about equal pieces of at most MAX bytes, at
# paragraph (blank line) boundaries, or at line boundaries inside a paragraph that
# is itself too long; with DOC_UNIT set to a Perl regex, cuts go only before lines
# that match it (e.g. dictionary entry heads). A single unit longer than MAX is kept
# whole.
normalize_docs() {
  perl -e '
    my $max = $ARGV[0] // 0; my $unit = $ENV{DOC_UNIT};
    $/ = "\x1e\n";
    while (my $d = <STDIN>) {
      chomp $d;
      $d =~ tr/\x1e//d;
      $d =~ s/\A(?:[ \t]*\n)+//;
      $d =~ s/\s+\z//;
      next unless length $d;
      $d .= "\n";
      if (!$max || length($d) <= $max) { print $d, "\x1e\n"; next; }
      my @units;
      if (defined $unit && length $unit) {
        @units = split /(?=^(?:$unit))/m, $d;
      } else {
        for my $p (split /(?<=\n\n)(?!\n)/, $d) {
          push @units, length($p) > $max ? split(/(?<=\n)/, $p) : $p;
        }
      }
      # Aim each piece at (bytes left) / (pieces still needed); cut before a unit when
      # adding it would overflow MAX or end further from that aim than stopping.
      my $rem = length $d;
      my $target = $rem / int(($rem + $max - 1) / $max);
      my $cur = "";
      for my $u (@units) {
        my ($c, $n) = (length $cur, length($cur) + length($u));
        if ($c && ($n > $max || $n - $target > $target - $c)) {
          emit($cur); $rem -= $c; $cur = "";
          $target = $rem / int(($rem + $max - 1) / $max);
        }
        $cur .= $u;
      }
      emit($cur) if length $cur;
    }
    sub emit { my $c = shift; $c =~ s/\A(?:[ \t]*\n)+//; $c =~ s/\s+\z//;
               print $c, "\n\x1e\n" if length $c; }
  ' "${1:-0}"
}

# finish OUT TMPFILE: check TMPFILE is non-empty, rename it to OUT, log its size.
finish() {
  local out=$1 tmp=$2 n
  [[ -s $tmp ]] || die "produced no output"
  n=$(LC_ALL=C grep -c $'^\036$' "$tmp" || true)
  mv -f "$tmp" "$out"
  log "wrote $out: $(human "$(fsize "$out")"), $n documents"
}
