"""apformat.py - read algoprog tensor files (checkpoints and dumps) from Python.

The layout is documented byte by byte in docs/FORMATS.md; this reader is the short script that
document promises, used by the PyTorch reference tests. Standard library + numpy only.

    f = read("runs/x/checkpoint.bin")
    f.meta["step"], f.config["d_model"], f.tensors["p.wte"].shape
"""
import struct

import numpy as np

MAGIC = b"ALGOPROG"
END = b"ALGOEND\0"
DTYPES = {0: np.float32, 1: np.int32, 2: np.uint8}


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = None


def crc32c(data):
    """CRC32C (Castagnoli); slow in pure Python, fine for test-sized files."""
    global _TABLE
    if _TABLE is None:
        _TABLE = _crc32c_table()
    c = 0xFFFFFFFF
    for b in data:
        c = (c >> 8) ^ _TABLE[(c ^ b) & 0xFF]
    return c ^ 0xFFFFFFFF


class TensorFile:
    def __init__(self, kind, text, tensors):
        self.kind = kind
        self.text = text
        self.tensors = tensors
        self.sections = _parse_ini(text)
        self.meta = self.sections.get("meta", {})
        self.config = self.sections.get("config", {})


def _parse_ini(text):
    sections, cur = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            cur = line[1:line.index("]")]
            sections.setdefault(cur, {})
            continue
        key, _, val = line.partition("=")
        val = val.strip()
        if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
            val = val[1:-1]
        sections.setdefault(cur, {})[key.strip()] = val
    return sections


def read(path, verify_crc=True):
    buf = open(path, "rb").read()
    if len(buf) < 80 or buf[:8] != MAGIC:
        raise ValueError(f"{path}: not an algoprog tensor file")
    version, kind, header, file_bytes, n, text_len = struct.unpack_from("<IIQQII", buf, 8)
    if version != 1:
        raise ValueError(f"{path}: format version {version}")
    if file_bytes != len(buf) or buf[-16:-8] != END:
        raise ValueError(f"{path}: truncated")
    if verify_crc and crc32c(buf[:-16]) != struct.unpack_from("<I", buf, len(buf) - 8)[0]:
        raise ValueError(f"{path}: checksum mismatch")
    text = buf[64:64 + text_len].decode()
    table = (64 + text_len + 63) // 64 * 64
    tensors = {}
    for i in range(n):
        e = table + 128 * i
        name = buf[e:e + 64].split(b"\0", 1)[0].decode()
        dtype, ndim = struct.unpack_from("<II", buf, e + 64)
        shape = struct.unpack_from("<4Q", buf, e + 72)[:ndim]
        off, nbytes = struct.unpack_from("<QQ", buf, e + 104)
        dt = np.dtype(DTYPES[dtype])
        arr = np.frombuffer(buf, dtype=dt, count=nbytes // dt.itemsize, offset=off)
        tensors[name] = arr.reshape(shape)
    return TensorFile(kind, text, tensors)


class Shard:
    def __init__(self, tokens, n_bytes, n_docs, tokenizer_hash, text_hash):
        self.tokens, self.n_bytes, self.n_docs = tokens, n_bytes, n_docs
        self.tokenizer_hash, self.text_hash = tokenizer_hash, text_hash


def read_shard(path):
    """A token shard (docs/FORMATS.md): 64-byte header, then uint16 or uint32 token ids."""
    buf = open(path, "rb").read()
    if buf[:8] != b"APSHARD\0":
        raise ValueError(f"{path}: not a token shard")
    version, width, n, n_bytes, n_docs, tok_hash, text_hash, crc, hb = struct.unpack_from("<IIQQQQQII", buf, 8)
    tokens = np.frombuffer(buf, dtype=np.uint16 if width == 2 else np.uint32, count=n, offset=hb)
    return Shard(tokens.astype(np.int64), n_bytes, n_docs, tok_hash, text_hash)


def read_tokenizer(path):
    """A tokenizer file: returns (list of token bytes by id, {id: special name}, pattern or None)."""
    f = read(path)
    off = f.tensors["token_offsets"].astype(np.int64)
    blob = f.tensors["token_bytes"].tobytes()
    tokens = [blob[off[i]:off[i + 1]] for i in range(len(off) - 1)]
    specials = {int(k): v for k, v in f.sections.get("special", {}).items()}
    pattern = f.tensors["pattern"].tobytes().decode() if "pattern" in f.tensors else None
    return tokens, specials, pattern
