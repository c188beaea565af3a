"""Reading an ONNX file without its weights: a protobuf wire-format pass that copies the model
but drops the large data fields of the graph's initializers (their dims stay).

The file is memory-mapped, so the pages holding weights are never read: a 500 MB model is
analysed about as fast as a 5 MB one, and parsing copies only the graph. Malformed input is
passed through unchanged for the protobuf parser to reject with its own message. Pure
Python, no ``onnx`` import.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    import mmap

Buffer = Union[bytes, bytearray, memoryview, "mmap.mmap"]

#: ModelProto.graph, GraphProto.initializer, and the TensorProto data fields (float_data,
#: int32_data, int64_data, raw_data, double_data, uint64_data).
_GRAPH, _INITIALIZER = 7, 5
_DATA_FIELDS = frozenset({4, 5, 7, 9, 10, 11})
#: Data fields longer than this (bytes) are dropped; shorter ones (shape constants) stay.
KEEP_BYTES = 64 * 1024


class Malformed(ValueError):
    """Bytes that are not a well-formed protobuf message at the levels scanned."""


def _varint(buf: Buffer, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise Malformed("bad varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _encode(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _fields(buf: Buffer, start: int, end: int) -> list[tuple[int, int, int, int, int]]:
    """``(field, wire type, field start, payload start, payload end)`` of a message's
    fields; a length-delimited payload is the bytes after its length."""
    found = []
    pos = start
    while pos < end:
        field_start = pos
        key, pos = _varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(buf, pos, end)
            payload = pos
        elif wire == 2:
            length, payload = _varint(buf, pos, end)
            pos = payload + length
        elif wire == 1:
            payload, pos = pos, pos + 8
        elif wire == 5:
            payload, pos = pos, pos + 4
        else:
            raise Malformed(f"wire type {wire}")
        if pos > end or field == 0:
            raise Malformed("field runs past its message")
        found.append((field, wire, field_start, payload, pos))
    return found


def _rewrite(buf: Buffer, start: int, end: int, level: int) -> bytes:
    """The message at ``[start, end)`` with the weights dropped. ``level``: 0 model, 1 graph,
    2 tensor."""
    pieces: list[bytes] = []
    run = start  # start of the bytes still to copy verbatim
    for field, wire, field_start, payload, field_end in _fields(buf, start, end):
        if wire != 2:
            continue
        if level == 2:
            if field in _DATA_FIELDS and field_end - payload > KEEP_BYTES:
                pieces.append(bytes(buf[run:field_start]))
                run = field_end
            continue
        if (level, field) not in ((0, _GRAPH), (1, _INITIALIZER)):
            continue
        inner = _rewrite(buf, payload, field_end, level + 1)
        if len(inner) == field_end - payload:
            continue  # unchanged: stays in the verbatim run
        pieces.append(bytes(buf[run:field_start]))
        pieces.append(_encode((field << 3) | 2) + _encode(len(inner)) + inner)
        run = field_end
    pieces.append(bytes(buf[run:end]))
    return b"".join(pieces)


def strip_weights(data: Buffer) -> bytes:
    """A serialized ModelProto without its initializers' large data fields (``data`` itself
    when it is not well formed, for the parser to report)."""
    try:
        return _rewrite(data, 0, len(data), 0)
    except Malformed:
        return bytes(data)


def read_model_bytes(path: str, limit: int) -> bytes:
    """The ONNX model at ``path`` without its weights, reading only the pages it keeps.

    Raises ``OSError`` when the file cannot be read and ``ValueError`` above ``limit`` bytes.
    """
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limit:
            raise ValueError(size)
        if size == 0:
            data = handle.read(limit + 1)  # a pipe or special file reports size 0
            if len(data) > limit:
                raise ValueError(len(data))
            return strip_weights(data)
        import mmap

        try:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return strip_weights(handle.read(limit + 1))
        try:
            return strip_weights(mapped)
        finally:
            mapped.close()
