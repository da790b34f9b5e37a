#!/usr/bin/env bash
# pd-prose: ~30 MB of public-domain English prose from Debian packages, in this order:
#   kjv      King James Bible (1611)                  bible-kjv            one doc per chapter
#   web      World English Bible (incl. deuterocanon)  sword-text-web       one doc per chapter
#   tdavid   Spurgeon, The Treasury of David (1869-85) sword-comm-tdavid    one doc per Psalm,
#            cut at paragraph boundaries into pieces of at most 64 KB (Psalm 119 is over 1 MB)
#   austen   Jane Austen's six novels (1811-1818)      r-cran-janeaustenr   one doc per chapter
#   moby     Melville, Moby Dick (1851)                r-cran-tokenizers    one doc per chapter
#   tidytext Great Expectations, The War of the Worlds, Twenty Thousand Leagues under the
#            Sea (1861-1898)                           r-cran-tidytext      one doc per chapter
#   devil    Bierce, The Devil's Dictionary (1911)     dict-devil           one doc per letter
#   jargon   The Jargon File 4.4.7 (2003)              jargon-text          one doc per chapter,
#            appendix, or glossary letter, letters cut between entries into pieces <= 64 KB
# Licence: all texts public domain (the Jargon File is explicitly placed in the public
# domain); Debian packaging MIT (R packages), GPL (bible-kjv program), various.
# r-cran-tokenizers and r-cran-tidytext are only downloaded and unpacked (apt-get
# download + dpkg-deb -x), not installed, to avoid their heavy R dependency chains.
# Usage: bash scripts/corpora/pd-prose.sh OUT_FILE   (~30 MB, UTF-8)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/corpora/lib.sh
source "$here/lib.sh"
# shellcheck source=scripts/corpora/austen.sh
source "$here/austen.sh"   # austen_novels, austen_docs

out=${1:-}
begin "$out"   # usage check, $TMPD, $OUT_TMP
need_pkgs bible-kjv sword-text-web sword-comm-tdavid libsword-utils dict-devil jargon-text \
  r-base-core r-cran-janeaustenr
mkdir -p "$TMPD/parts"
max=65536   # largest document, in bytes, for sources cut into pieces

# part N NAME: store stdin (documents) as part N of the corpus and log its size.
# (part runs in a pipeline subshell, so the order number is given, not counted.)
part() {
  local f=$TMPD/parts/$1-$2.txt
  cat > "$f"
  [[ -s $f ]] || die "$2: produced no text"
  log "$2 ... $(human "$(fsize "$f")"), $(LC_ALL=C grep -c $'^\036$' "$f") documents"
}

# sword_docs MODULE KIND: print a SWORD module (via mod2imp) as one document per
# chapter (Bible) or per Psalm (commentary); chapter 0 (book introduction, preface)
# joins chapter 1. The markup is removed as measured in shared/corpora.md: KIND
# "bible" gives one line per verse, "commentary" one line per paragraph.
sword_docs() {
  mod2imp "$1" | perl -CSD -e '
    my $kind = shift;
    my $cur;
    while (my $line = <STDIN>) {
      chomp $line;
      $line =~ tr/\x{1e}//d;
      if ($line =~ /^\$\$\$(.*)$/) {
        my $key = $1;
        if ($key =~ /^(.+) (\d+):(\d+)$/) {
          my $chap = $1 . " " . ($2 < 1 ? 1 : $2);
          print "\x1e\n" if defined $cur && $chap ne $cur;
          $cur = $chap;
        }
        next;
      }
      local $_ = $line;
      s#<note\b.*?</note># #g;
      if ($kind eq "bible") {
        s#<[^>]+># #g; s/[ \t]+/ /g; s/ ([,.;:!?\x{2019}\x{201D}])/$1/g; s/([\x{201C}\x{2018}]) /$1/g; s/^ //; s/ $//;
      } else {
        s#<div eID[^>]*/>|</title>#\n#g; s#<[^>]+># #g; s/[ \t]+/ /g; s/ ([,.;:!?\x{2019}\x{201D}])/$1/g;
        s/^ //mg; s/ $//mg;
      }
      print "$_\n" for grep { !/^ *$/ } split /\n/;
    }
    print "\x1e\n";
  ' "$2"
  # mod2imp exits 0 even on read errors; an empty result is caught by part().
}

# --- kjv: "Ge1:1 In the beginning..." -> verse text, new document at each chapter.
bible -f "gen1:1-rev22:21" | perl -ne '
  tr/\x1e//d;
  next unless /^([1-3]?[A-Za-z]+\d+):\d+ (.*\n)/;
  print "\x1e\n" if defined $cur && $1 ne $cur;
  $cur = $1;
  print $2;
  END { print "\x1e\n" }
' | normalize_docs 0 | part 1 kjv

# --- web: World English Bible 2015 edition.
sword_docs engWEB2015eb bible | normalize_docs 0 | part 2 web

# --- tdavid: The Treasury of David; Psalms are long, so they are cut into pieces.
sword_docs TDavid commentary | normalize_docs "$max" | part 3 tdavid

# --- austen (same documents as austen.sh).
austen_novels "$TMPD/austen"
austen_docs "$TMPD/austen" | normalize_docs "$max" | part 4 austen

# --- moby and tidytext: data files of two R packages, unpacked but not installed.
unpack_debs "$TMPD/rpkgs" r-cran-tokenizers r-cran-tidytext
lib=$TMPD/rpkgs/root/usr/lib/R/site-library
mkdir -p "$TMPD/pg"
# shellcheck disable=SC2016  # R code, not shell
Rscript -e 'a <- commandArgs(TRUE); lib <- a[1]; dir <- a[2]
  e <- new.env(); invisible(lazyLoad(file.path(lib, "tokenizers/data/Rdata"), envir = e))
  writeLines(e$mobydick, file.path(dir, "moby.txt"), useBytes = TRUE)
  load(file.path(lib, "tidytext/extdata/books.rda"))
  titles <- setdiff(unique(books$title), "Pride and Prejudice")   # P&P is in austen
  for (i in seq_along(titles))
    writeLines(books$text[books$title == titles[i]], file.path(dir, paste0("tt", i, ".txt")), useBytes = TRUE)' \
  "$lib" "$TMPD/pg" || die "Rscript failed to read the tokenizers/tidytext data"

# Moby Dick is a whole Project Gutenberg file (CRLF, BOM): keep the text between the
# "*** START OF" line and the "End of Project Gutenberg" line.
sed 's/\r$//; 1s/^\xEF\xBB\xBF//' "$TMPD/pg/moby.txt" |
  sed -n '/^\*\*\* *START OF/,/^End of \(the \)\?Project Gutenberg/p' | sed '1d;$d' > "$TMPD/pg/moby-body.txt"
split_at '^(?:ETYMOLOGY\.|EXTRACTS \(|CHAPTER \d+\.|Epilogue\s*$)' "$TMPD/pg/moby-body.txt" |
  normalize_docs "$max" | part 5 moby

split_at '^(?:(?:CHAPTER|Chapter) +[A-Z]+|(?:BOOK|PART) +[A-Z]+)\.? *$' "$TMPD"/pg/tt[0-9].txt |
  normalize_docs "$max" | part 6 tidytext

# --- devil: the dictd database, read through its index (base64 offset/length per
# entry): the preface ("00-database-info"), then the entries, one document per
# initial letter. The other 00-database-* entries are metadata and are left out.
perl -e '
  my ($idx, $dict) = @ARGV;
  my %val; @val{"A".."Z", "a".."z", "0".."9", "+", "/"} = (0 .. 63);
  sub dec { my $n = 0; $n = $n * 64 + $val{$_} for split //, shift; return $n }
  open(my $ih, "<", $idx) or die "devil: cannot read $idx: $!\n";
  my %len;
  while (<$ih>) {
    chomp;
    my ($w, $o, $l) = split /\t/;
    next if $w =~ /^00database/ && $w ne "00databaseinfo";
    $len{dec($o)} = dec($l);
  }
  open(my $dh, "-|", "gzip", "-dc", $dict) or die "devil: cannot read $dict: $!\n";
  my $body = do { local $/; <$dh> };
  close $dh or die "devil: gzip -dc $dict failed\n";
  my $letter = "";
  for my $o (sort { $a <=> $b } keys %len) {
    my $t = substr($body, $o, $len{$o});
    $t =~ tr/\x1e//d;
    $t =~ s/^00-database-.*\n//mg;
    my $l = uc substr($t, 0, 1);
    if ($l =~ /[A-Z]/ && $l ne $letter) { print "\x1e\n"; $letter = $l }
    print $t, ($t =~ /\n\z/ ? "" : "\n"), "\n";
  }
  print "\x1e\n";
' /usr/share/dictd/devil.index /usr/share/dictd/devil.dict.dz | normalize_docs "$max" | part 7 devil

# --- jargon: chapters, appendices and glossary letters are documents. The tables of
# contents (the front one, the glossary's list of all entry names and each letter's
# list) are dropped; entries start at "   :name:" lines, where long letters are cut.
zcat /usr/share/doc/jargon-text/jargon.txt.gz | perl -ne '
  tr/\x1e//d;
  if (!$front_done) {                         # front TOC: up to "Welcome to the Jargon File"
    if (/^\s+Table of Contents\s*$/) { $skip = 1; next }
    if (/^\s+Welcome to the Jargon File\s*$/) { $skip = 0; $front_done = 1 }
  }
  if (/^Glossary\s*$/) { $skip = 1; next }   # glossary TOC: up to the first letter
  if (/^(?:Chapter|Appendix)(?: |\xc2\xa0)\w+\./) { print "\x1e\n"; $skip = 0 }   # NBSP-separated
  if (/^  [0-9A-Z]\s*$/) { print "\x1e\n"; print; $skip = 1; next }   # letter heading
  $skip = 0 if $skip && /^   :/;             # first entry after a letter list
  print unless $skip;
  END { print "\x1e\n" }
' | DOC_UNIT='   :' normalize_docs "$max" | part 8 jargon

cat "$TMPD"/parts/*.txt > "$OUT_TMP"
finish "$out" "$OUT_TMP"
