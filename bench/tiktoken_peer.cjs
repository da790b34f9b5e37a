// tiktoken_peer.cjs PKG_DIR ENCODING FILE [--time]: tiktoken's ids for FILE's text (UTF-8,
// no special tokens) as JSON; with --time, its encode speed in MB/s instead (WASM, one thread).
const path = require("path");
const fs = require("fs");
const [pkg, encoding, file, flag] = process.argv.slice(2);
const { get_encoding } = require(path.resolve(pkg, "node_modules", "tiktoken"));
const enc = get_encoding(encoding);
const text = fs.readFileSync(file, "utf8");
if (flag === "--time") {
  const bytes = Buffer.byteLength(text, "utf8");
  enc.encode_ordinary(text.slice(0, 100000)); // warm up
  const t0 = process.hrtime.bigint();
  let n = 0;
  do { enc.encode_ordinary(text); n++; } while (Number(process.hrtime.bigint() - t0) < 2e9);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({ mb_per_s: (n * bytes) / 1e6 / s, bytes, runs: n }));
} else {
  console.log(JSON.stringify(Array.from(enc.encode_ordinary(text))));
}
enc.free();
