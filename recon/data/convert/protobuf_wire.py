"""A minimal protobuf wire-format decoder (no generated code, no protobuf dependency).

``decode(buf)`` returns a :class:`Message`: field number -> list of raw values in file order. Varints come back as
Python ints (unsigned; use :func:`signed64` for int64/int32), length-delimited fields as ``bytes`` (a string, bytes,
a sub-message or a packed repeated field: the caller knows which), fixed64/fixed32 as their raw little-endian
bytes. Helpers turn those into doubles, floats or packed arrays; repeated scalars are accepted both packed and
unpacked, as the protobuf spec requires of parsers.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

VARINT, FIXED64, LEN, SGROUP, EGROUP, FIXED32 = 0, 1, 2, 3, 4, 5


class WireError(ValueError):
    """Malformed protobuf bytes (the caller turns it into a ReconError naming the file)."""


def read_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    n = len(buf)
    while True:
        if pos >= n:
            raise WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint longer than 10 bytes")


def signed64(v: int) -> int:
    """Two's-complement reinterpretation of a varint as int64."""
    return v - (1 << 64) if v >= 1 << 63 else v


@dataclass
class Message:
    """Decoded fields of one message: number -> list of (wire type, raw value)."""

    fields: dict[int, list[tuple[int, int | bytes]]] = field(default_factory=dict)

    def has(self, num: int) -> bool:
        return num in self.fields

    def raw(self, num: int) -> list[tuple[int, int | bytes]]:
        return self.fields.get(num, [])

    # ---- scalars (last value wins, as in protobuf)
    def int(self, num: int, default: int = 0) -> int:
        vals = [v for wt, v in self.raw(num) if wt == VARINT]
        return signed64(int(vals[-1])) if vals else default  # type: ignore[arg-type]

    def double(self, num: int, default: float = 0.0) -> float:
        vals = [v for wt, v in self.raw(num) if wt == FIXED64]
        return struct.unpack("<d", vals[-1])[0] if vals else default  # type: ignore[arg-type]

    def bytes(self, num: int, default: bytes = b"") -> bytes:
        vals = [v for wt, v in self.raw(num) if wt == LEN]
        return bytes(vals[-1]) if vals else default  # type: ignore[arg-type]

    def string(self, num: int, default: str = "") -> str:
        b = self.bytes(num)
        return b.decode("utf-8", errors="replace") if b else default

    def message(self, num: int) -> Message | None:
        b = [v for wt, v in self.raw(num) if wt == LEN]
        return decode(b[-1]) if b else None  # type: ignore[arg-type]

    def messages(self, num: int) -> list[Message]:
        return [decode(v) for wt, v in self.raw(num) if wt == LEN]  # type: ignore[arg-type]

    # ---- repeated scalars, packed or not
    def doubles(self, num: int) -> np.ndarray:
        return self._repeated(num, "<f8", FIXED64)

    def floats(self, num: int) -> np.ndarray:
        return self._repeated(num, "<f4", FIXED32)

    def ints(self, num: int) -> np.ndarray:
        out: list[int] = []
        for wt, v in self.raw(num):
            if wt == VARINT:
                out.append(signed64(int(v)))  # type: ignore[arg-type]
            elif wt == LEN:
                pos, buf = 0, v
                while pos < len(buf):  # type: ignore[arg-type]
                    x, pos = read_varint(buf, pos)  # type: ignore[arg-type]
                    out.append(signed64(x))
        return np.asarray(out, dtype=np.int64)

    def _repeated(self, num: int, dtype: str, wire: int) -> np.ndarray:
        parts = []
        for wt, v in self.raw(num):
            if wt in (wire, LEN):
                b = bytes(v)  # type: ignore[arg-type]
                if len(b) % np.dtype(dtype).itemsize:
                    raise WireError(f"field {num}: packed length {len(b)} not a multiple of {dtype}")
                parts.append(np.frombuffer(b, dtype=dtype))
        return np.concatenate(parts).astype(np.float64 if dtype == "<f8" else np.float32) if parts else \
            np.zeros(0, np.float64 if dtype == "<f8" else np.float32)


def decode(buf: bytes | memoryview) -> Message:
    """Decode one message's fields (sub-messages stay as bytes until asked for)."""
    mv = memoryview(buf)
    n = len(mv)
    pos = 0
    msg = Message()
    while pos < n:
        key, pos = read_varint(mv, pos)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise WireError("field number 0")
        if wt == VARINT:
            val, pos = read_varint(mv, pos)
            v: int | bytes = val
        elif wt == FIXED64:
            if pos + 8 > n:
                raise WireError("truncated fixed64")
            v, pos = bytes(mv[pos:pos + 8]), pos + 8
        elif wt == LEN:
            ln, pos = read_varint(mv, pos)
            if pos + ln > n:
                raise WireError(f"field {num}: length {ln} runs past the end of the message")
            v, pos = bytes(mv[pos:pos + ln]), pos + ln
        elif wt == FIXED32:
            if pos + 4 > n:
                raise WireError("truncated fixed32")
            v, pos = bytes(mv[pos:pos + 4]), pos + 4
        else:
            raise WireError(f"unsupported wire type {wt} (groups are not used by these schemas)")
        msg.fields.setdefault(num, []).append((wt, v))
    return msg


# ------------------------------------------------------------------------------------------------ encoding
# A small encoder, the mirror of the decoder: used by tests to build fixture records following the real schemas.
def encode_varint(v: int) -> bytes:
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def enc_varint_field(num: int, v: int) -> bytes:
    return encode_varint(num << 3 | VARINT) + encode_varint(int(v))


def enc_bytes_field(num: int, b: bytes) -> bytes:
    return encode_varint(num << 3 | LEN) + encode_varint(len(b)) + b


def enc_double_field(num: int, x: float) -> bytes:
    return encode_varint(num << 3 | FIXED64) + struct.pack("<d", float(x))


def enc_packed_doubles(num: int, xs: np.ndarray) -> bytes:
    return enc_bytes_field(num, np.asarray(xs, "<f8").tobytes())


def enc_unpacked_doubles(num: int, xs: np.ndarray) -> bytes:
    return b"".join(enc_double_field(num, x) for x in np.asarray(xs, float).ravel())


def enc_packed_floats(num: int, xs: np.ndarray) -> bytes:
    return enc_bytes_field(num, np.asarray(xs, "<f4").tobytes())
