"""Read an ONNX file's metadata_props without the onnx package: a walk over ModelProto's top level.

Protocol buffers wire format: each field is a varint key ``(number << 3) | wire_type`` followed by a
varint (type 0), 8 bytes (1), a varint length and that many bytes (2) or 4 bytes (5). ModelProto
keeps ``ir_version`` in field 1, ``graph`` in 7 and ``metadata_props`` in 14, each entry a
StringStringEntryProto with ``key`` in field 1 and ``value`` in field 2. Anything else is skipped.
"""
from __future__ import annotations

from typing import Iterator

_IR_VERSION, _GRAPH, _METADATA_PROPS = 1, 7, 14


class NotOnnx(ValueError):
    """The bytes are not a serialized ONNX ModelProto."""


def read_metadata_props(data: bytes) -> dict[str, str]:
    """``metadata_props`` of a serialized ModelProto as a dict; ``NotOnnx`` when it is not one."""
    props: dict[str, str] = {}
    seen: set[int] = set()
    for number, value in _fields(memoryview(data)):
        seen.add(number)
        if number == _METADATA_PROPS:
            props.update([_string_pair(value)])
    if not {_IR_VERSION, _GRAPH} <= seen:
        raise NotOnnx("no ir_version or graph field")
    return props


def _string_pair(entry: int | memoryview) -> tuple[str, str]:
    """(key, value) of one StringStringEntryProto."""
    if not isinstance(entry, memoryview):
        raise NotOnnx("a metadata entry is not a message")
    pair = {1: b"", 2: b""}
    for number, value in _fields(entry):
        if number in pair:
            if not isinstance(value, memoryview):
                raise NotOnnx("a metadata key or value is not a string")
            pair[number] = value
    try:
        return bytes(pair[1]).decode(), bytes(pair[2]).decode()
    except UnicodeDecodeError:
        raise NotOnnx("a metadata key or value is not UTF-8") from None


def _fields(buffer: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, varint value or payload) for each field of one message."""
    position = 0
    while position < len(buffer):
        key, position = _varint(buffer, position)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise NotOnnx("field number 0")
        if wire_type == 0:
            value, position = _varint(buffer, position)
            yield number, value
            continue
        if wire_type == 2:
            size, position = _varint(buffer, position)
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
        else:
            raise NotOnnx(f"wire type {wire_type}")
        if position + size > len(buffer):
            raise NotOnnx("truncated")
        yield number, buffer[position : position + size]
        position += size


def _varint(buffer: memoryview, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(buffer) or shift > 63:
            raise NotOnnx("truncated or overlong varint")
        byte = buffer[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, position
