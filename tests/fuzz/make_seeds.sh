#!/usr/bin/env bash
# tests/fuzz/make_seeds.sh ALGOPROG - (re)generate the seed corpora of the fuzz targets from real
# files the tool writes: recipes, study files, a micro checkpoint (transformer and LSTM), a shard,
# a BPE tokenizer and fit CSVs. The seeds are committed; crash regressions sit beside them.
set -euo pipefail
bin=$(realpath "${1:?usage: make_seeds.sh ALGOPROG}")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
c="$here/corpus"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$c"/{ini,recipe,args,study,checkpoint,shard,tokenizer,csv}

for f in "$root"/recipes/*.ini; do
  n=$(basename "$f" .ini)
  cp "$f" "$c/ini/seed-$n.ini"
  { printf '\001'; cat "$f"; } >"$c/recipe/seed-$n"
done
printf '\000{"d_model": 64, "n_layers": 2, "act": "swiglu", "pos": "rope", "data": "a\\u0041b", "lr": 3e-4}' \
  >"$c/recipe/seed-json"
printf 'd_model=64\nn_layers=2\nact=swiglu\npos=rope\nn_kv_heads=2' >"$c/args/seed-llama"
printf 'family=lstm\nlstm_proj=true\nlstm_hidden=96\nd_model=32' >"$c/args/seed-lstm"
printf 'optim.optimizer=muon\nschedule=wsd\nwarmup=10\nsoftcap=30' >"$c/args/seed-muon"
cp "$root/recipes/demo.ini" "$c/study/seed-demo.ini"
cp "$root/recipes/full.ini" "$c/study/seed-full.ini"

# text: the licences every Debian system has
cat /usr/share/common-licenses/GPL-3 /usr/share/common-licenses/Apache-2.0 >"$tmp/text.txt"
common=(data="$tmp/text.txt" context=16 batch=2 steps=2 eval_every=2 eval_tokens=64 log_every=0 threads=1)
"$bin" train llama-2023 "${common[@]}" out="$tmp/t" d_model=8 n_heads=2 n_layers=1 >/dev/null
cp "$tmp/t/checkpoint.bin" "$c/checkpoint/seed-llama.bin"
"$bin" train lstm-2016 "${common[@]}" out="$tmp/l" d_model=8 n_layers=1 >/dev/null
cp "$tmp/l/checkpoint.bin" "$c/checkpoint/seed-lstm.bin"

head -c 3000 "$tmp/text.txt" >"$tmp/small.txt"
"$bin" tokenize encode "$tmp/small.txt" tokenizer=bytes out="$c/shard/seed-bytes.bin" >/dev/null
"$bin" tokenize train "$tmp/text.txt" vocab=300 out="$c/tokenizer/seed-bpe300.tok" >/dev/null

cat >"$c/csv/seed-study.csv" <<'CSV'
arm,params,tokens,flops,loss,budget
a,1000000,20000000,1.2e14,3.1,1e14
a,2000000,40000000,4.8e14,2.9,5e14
b,1000000,20000000,1.2e14,3.0,1e14
b,2000000,40000000,4.8e14,2.7,5e14
CSV
cat >"$c/csv/seed-paper.csv" <<'CSV'
N,D,loss
7.0e7,1.4e9,3.45
4.0e8,8.0e9,2.91
1.6e9,3.2e10,2.58
CSV
ls "$c"/* | wc -l
