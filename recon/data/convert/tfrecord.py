"""TFRecord files without TensorFlow: record framing and CRC32C (Castagnoli), pure Python + numpy.

A TFRecord file is a sequence of records, each::

    uint64 length (little endian)
    uint32 masked_crc32c(length bytes)
    bytes  data[length]
    uint32 masked_crc32c(data)

with ``masked_crc(c) = ((c >> 15) | (c << 17)) + 0xa282ead8`` (mod 2^32). Both CRCs are verified on read; a short
read or a mismatch raises :class:`recon.errors.ReconError` naming the file and the record.

CRC32C of large records (a Waymo frame is several MB) is computed with numpy: the data is cut into equal chunks
whose zero-initialised CRC registers advance in lock-step (one vectorised table lookup per byte position), then the
chunk CRCs are combined with the GF(2) "append n zero bytes" operator (the zlib ``crc32_combine`` idea).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from recon.errors import ReconError

_POLY = 0x82F63B78  # CRC-32C (Castagnoli), reflected


def _make_table() -> np.ndarray:
    t = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        t[i] = c
    return t


_TABLE = _make_table()
_TABLE_LIST = [int(x) for x in _TABLE]


def _raw_crc_py(data: bytes, crc: int = 0) -> int:
    """Reflected CRC register update without pre/post inversion (pure Python, for short inputs)."""
    tbl = _TABLE_LIST
    for b in data:
        crc = tbl[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def _gf2_times(mat: list[int], vec: int) -> int:
    """Multiply a 32x32 GF(2) matrix (list of 32 column bit-vectors) by a 32-bit vector."""
    out, i = 0, 0
    while vec:
        if vec & 1:
            out ^= mat[i]
        vec >>= 1
        i += 1
    return out


def _gf2_square(mat: list[int]) -> list[int]:
    return [_gf2_times(mat, mat[i]) for i in range(32)]


def _zeros_operator(nbytes: int) -> list[int]:
    """The matrix advancing a raw CRC register over ``nbytes`` zero bytes (square-and-multiply)."""
    # operator for one zero *bit*
    odd = [_POLY] + [1 << (i - 1) for i in range(1, 32)]
    op = [1 << i for i in range(32)]  # identity
    power = odd
    nbits = nbytes * 8
    while nbits:
        if nbits & 1:
            op = [_gf2_times(power, c) for c in op]
        nbits >>= 1
        if nbits:
            power = _gf2_square(power)
    return op


def _raw_crc_numpy(buf: np.ndarray, n_chunks: int) -> int:
    """Raw (zero-init) CRC of ``buf`` (uint8) via ``n_chunks`` lock-step chunks; front-pads with zeros."""
    L = -(-buf.size // n_chunks)
    pad = L * n_chunks - buf.size
    if pad:
        buf = np.concatenate([np.zeros(pad, np.uint8), buf])  # leading zeros leave a zero-init register at 0
    chunks = buf.reshape(n_chunks, L)
    state = np.zeros(n_chunks, dtype=np.uint32)
    for j in range(L):
        state = _TABLE[(state ^ chunks[:, j]) & 0xFF] ^ (state >> np.uint32(8))
    op = _zeros_operator(L)
    crc = 0
    for s in state.tolist():
        crc = _gf2_times(op, crc) ^ s
    return crc


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """Standard CRC-32C of ``data`` (init 0xFFFFFFFF, final xor 0xFFFFFFFF); crc32c(b"123456789") == 0xE3069283."""
    data = bytes(data)
    n = len(data)
    if n < 4096:
        return _raw_crc_py(data, 0xFFFFFFFF) ^ 0xFFFFFFFF
    raw = _raw_crc_numpy(np.frombuffer(data, dtype=np.uint8), n_chunks=min(4096, max(16, n // 512)))
    init_term = _gf2_times(_zeros_operator(n), 0xFFFFFFFF)  # the init value carried over n bytes (linearity)
    return (raw ^ init_term) ^ 0xFFFFFFFF


def masked_crc32c(data: bytes | bytearray | memoryview) -> int:
    """TFRecord's masked CRC-32C."""
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def index_records(path: str | Path) -> list[tuple[int, int]]:
    """(offset of data, length) of every record, checking each length CRC and that the data is all there."""
    path = Path(path)
    if not path.is_file():
        raise ReconError(f"{path}: TFRecord file not found")
    size = path.stat().st_size
    out: list[tuple[int, int]] = []
    with open(path, "rb") as f:
        pos = 0
        while pos < size:
            header = f.read(12)
            if len(header) < 12:
                raise ReconError(f"{path}: truncated TFRecord (record {len(out)} header cut at byte {pos})")
            (length,), (len_crc,) = struct.unpack("<Q", header[:8]), struct.unpack("<I", header[8:])
            if masked_crc32c(header[:8]) != len_crc:
                raise ReconError(f"{path}: CRC mismatch in the length of record {len(out)} at byte {pos} "
                                 "(corrupt or not a TFRecord file)")
            end = pos + 12 + length + 4
            if end > size:
                raise ReconError(f"{path}: truncated TFRecord (record {len(out)} needs {length} bytes of data, "
                                 f"file ends {end - size} bytes early)")
            out.append((pos + 12, length))
            f.seek(end)
            pos = end
    return out


def read_record(f: BinaryIO, offset: int, length: int, path: Path | str, index: int) -> bytes:
    """Read one record's data at ``offset`` and verify its CRC."""
    f.seek(offset)
    data = f.read(length)
    crc_bytes = f.read(4)
    if len(data) != length or len(crc_bytes) != 4:
        raise ReconError(f"{path}: truncated TFRecord (record {index} cut short)")
    if masked_crc32c(data) != struct.unpack("<I", crc_bytes)[0]:
        raise ReconError(f"{path}: CRC mismatch in the data of record {index} (file corrupt)")
    return data


def read_records(path: str | Path) -> Iterator[bytes]:
    """Yield the verified data of every record in a TFRecord file."""
    idx = index_records(path)
    with open(path, "rb") as f:
        for i, (off, n) in enumerate(idx):
            yield read_record(f, off, n, path, i)


def encode_record(data: bytes) -> bytes:
    """One framed TFRecord record (used by tests and tools that write TFRecords)."""
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))


def write_records(path: str | Path, records: list[bytes]) -> Path:
    """Write a TFRecord file (atomically)."""
    from recon.io.atomic import atomic_write_bytes

    return atomic_write_bytes(path, b"".join(encode_record(r) for r in records))
