"""Read what the contract needs from an ONNX file without the onnx package: metadata_props and the
graph's inputs and outputs, by a walk over the protobuf wire format.

Protocol buffers wire format: each field is a varint key ``(number << 3) | wire_type`` followed by a
varint (type 0), 8 bytes (1), a varint length and that many bytes (2) or 4 bytes (5). ModelProto
keeps ``ir_version`` in field 1, ``graph`` in 7 and ``metadata_props`` in 14, each entry a
StringStringEntryProto with ``key`` in field 1 and ``value`` in field 2. GraphProto keeps
``initializer`` in 5 (TensorProto, ``name`` in 8), ``input`` in 11 and ``output`` in 12
(ValueInfoProto: ``name`` 1, ``type`` 2 -> TypeProto ``tensor_type`` 1 -> ``elem_type`` 1 and
``shape`` 2 -> ``dim`` 1 -> ``dim_value`` 1). Anything else is skipped; a repeated scalar field keeps
its last value, as protobuf (and the native reader, cpp/src/onnx_proto.cpp) reads it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

_IR_VERSION, _GRAPH, _METADATA_PROPS = 1, 7, 14
_INITIALIZER, _INPUT, _OUTPUT = 5, 11, 12
ELEM_FLOAT, ELEM_INT64 = 1, 7  # TensorProto.DataType


class NotOnnx(ValueError):
    """The bytes are not a serialized ONNX ModelProto. ``words`` is the reader's refusal in a user's words,
    the same as the native reader's (cpp/src/onnx_proto.cpp, docs/onnx-contract.md); str() the detail."""

    words = "not an ONNX model"

    def describe(self, source: str) -> str:
        return f"{source}: {self.words} ({self})"


class CutShort(NotOnnx):
    """A file that began as a model (ir_version first, as every ONNX writer puts it) whose fields run past
    its end: a copy or a download that stopped part way."""

    words = "the file is cut short"

    def describe(self, source: str) -> str:
        return f"{super().describe(source)}; copy or export it again"


class _Truncated(NotOnnx):
    """A field that runs past the end of the bytes it is read from (CutShort at the top of a model)."""


@dataclass(frozen=True)
class Value:
    """A graph input or output: its name, TensorProto element type (0 if none) and dims, each an int or
    None where symbolic (the batch N)."""

    name: str
    elem_type: int
    dims: tuple[int | None, ...]


@dataclass(frozen=True)
class Header:
    """What a reader checks before it runs anything: metadata_props and the graph's interface."""

    metadata: dict[str, str]
    inputs: tuple[Value, ...]  # the graph's inputs less its initializers (IR < 4 lists those too)
    outputs: tuple[Value, ...]


def read_header(data: bytes) -> Header:
    """The ``Header`` of a serialized ModelProto; ``NotOnnx`` when it is not one."""
    props: dict[str, str] = {}
    seen: set[int] = set()
    inputs: list[Value] = []
    outputs: list[Value] = []
    initializers: set[str] = set()
    for number, value in _model_fields(memoryview(data)):
        seen.add(number)
        if number == _METADATA_PROPS:
            props.update([_string_pair(value)])
        elif number == _GRAPH:
            for graph_number, item in _fields(_message(value, "the graph")):
                if graph_number == _INITIALIZER:
                    initializers.add(_last_string(item, 8, "an initializer"))
                elif graph_number in (_INPUT, _OUTPUT):
                    (inputs if graph_number == _INPUT else outputs).append(_value_info(item))
    if not {_IR_VERSION, _GRAPH} <= seen:
        raise NotOnnx("no ir_version or graph field")
    return Header(props, tuple(v for v in inputs if v.name not in initializers), tuple(outputs))


def _value_info(entry: int | memoryview) -> Value:
    name, elem_type, dims = "", 0, ()
    for number, value in _fields(_message(entry, "a graph input or output")):
        if number == 1:
            name = _text(value)
        elif number == 2:
            for type_number, tensor_type in _fields(_message(value, "a type")):
                if type_number != 1:
                    continue
                for field, item in _fields(_message(tensor_type, "a tensor type")):
                    if field == 1 and isinstance(item, int):
                        elem_type = item
                    elif field == 2:
                        dims = tuple(_dim(dim) for number, dim in _fields(_message(item, "a shape")) if number == 1)
    return Value(name, elem_type, dims)


def _dim(entry: int | memoryview) -> int | None:
    value = None
    for number, item in _fields(_message(entry, "a dim")):
        if number == 1 and isinstance(item, int):
            value = item - 2**64 if item >= 2**63 else item  # int64 in a varint
    return value


def _message(value: int | memoryview, what: str) -> memoryview:
    if not isinstance(value, memoryview):
        raise NotOnnx(f"{what} is not a message")
    return value


def _text(value: int | memoryview) -> str:
    if not isinstance(value, memoryview):
        raise NotOnnx("a name is not a string")
    try:
        return bytes(value).decode()
    except UnicodeDecodeError:
        raise NotOnnx("a name is not UTF-8") from None


def _last_string(entry: int | memoryview, field: int, what: str) -> str:
    found = ""
    for number, value in _fields(_message(entry, what)):
        if number == field:
            found = _text(value)
    return found


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


def _model_fields(buffer: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """The ModelProto's own fields, as ``_fields``; a truncation at this level of a file that began as a
    model is ``CutShort`` (a truncation inside a field, the graph say, is a broken model, not a cut file)."""
    fields, began = _fields(buffer), None
    while True:
        try:
            number, value = next(fields)
        except StopIteration:
            return
        except _Truncated as e:
            if began:
                raise CutShort(str(e)) from None
            raise
        if began is None:
            began = number == _IR_VERSION and isinstance(value, int)
        yield number, value


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
            raise _Truncated("a field runs past the end of its message")
        yield number, buffer[position : position + size]
        position += size


def _varint(buffer: memoryview, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(buffer) or shift > 63:
            raise (_Truncated if position >= len(buffer) else NotOnnx)("truncated or overlong varint")
        byte = buffer[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, position
