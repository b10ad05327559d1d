"""Write an ONNX model without the onnx package: a graph of nodes and float32 initializers, encoded in
the protobuf wire format by hand (the runtime's installs have onnxruntime but not onnx).

Wire format: each field is a varint key ``(number << 3) | wire_type`` and then a varint (type 0), a
varint length and that many bytes (type 2) or 4 bytes (type 5). The field numbers are onnx.proto's:
ModelProto ir_version 1, producer_name 2, graph 7, opset_import 8 (OperatorSetIdProto: domain 1,
version 2); GraphProto node 1, name 2, initializer 5, input 11, output 12; NodeProto input 1,
output 2, name 3, op_type 4, attribute 5; AttributeProto name 1, f 2, i 3, ints 8, type 20 (FLOAT 1,
INT 2, INTS 7); TensorProto dims 1, data_type 2, name 8, raw_data 9 (little-endian); ValueInfoProto
name 1, type 2 -> TypeProto tensor_type 1 -> elem_type 1, shape 2 -> dim 1 -> dim_value 1 or
dim_param 2. tests/test_inception.py checks a written model with onnx.checker.
"""
from __future__ import annotations

import struct

import numpy as np

IR_VERSION, OPSET = 8, 17  # what gan-export writes too; every onnxruntime the extras allow reads them
ELEM_FLOAT = 1
_ATTR_FLOAT, _ATTR_INT, _ATTR_INTS = 1, 2, 7


def _varint(value: int) -> bytes:
    value &= 2**64 - 1  # negative int64s are 10-byte two's complement varints
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _bytes_field(number: int, payload: bytes | str) -> bytes:
    payload = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _attribute(name: str, value: int | float | tuple[int, ...]) -> bytes:
    if isinstance(value, tuple):
        body = b"".join(_int_field(8, v) for v in value) + _int_field(20, _ATTR_INTS)
    elif isinstance(value, float):
        body = _varint(2 << 3 | 5) + struct.pack("<f", value) + _int_field(20, _ATTR_FLOAT)
    else:
        body = _int_field(3, value) + _int_field(20, _ATTR_INT)
    return _bytes_field(1, name) + body


def _value_info(name: str, dims: tuple[int | str, ...]) -> bytes:
    """A float tensor's name and shape; a str dim is symbolic (the batch N)."""
    shape = b"".join(_bytes_field(1, _bytes_field(2, d) if isinstance(d, str) else _int_field(1, d)) for d in dims)
    tensor_type = _int_field(1, ELEM_FLOAT) + _bytes_field(2, shape)
    return _bytes_field(1, name) + _bytes_field(2, _bytes_field(1, tensor_type))


class GraphWriter:
    """Collects nodes and initializers in order; ``model()`` returns the serialized ModelProto."""

    def __init__(self, name: str):
        self.name = name
        self._nodes: list[bytes] = []
        self._initializers: list[bytes] = []
        self._count = 0

    def initializer(self, name: str, array: np.ndarray) -> str:
        """A float32 constant of the graph; returns its name."""
        array = np.ascontiguousarray(array, dtype="<f4")
        body = (b"".join(_int_field(1, d) for d in array.shape) + _int_field(2, ELEM_FLOAT)
                + _bytes_field(8, name) + _bytes_field(9, array.tobytes()))
        self._initializers.append(body)
        return name

    def node(self, op_type: str, inputs: list[str], output: str | None = None,
             **attributes: int | float | tuple[int, ...]) -> str:
        """One node; returns its one output's name (``output``, or a fresh one)."""
        self._count += 1
        output = output or f"{op_type.lower()}_{self._count}"
        body = (b"".join(_bytes_field(1, i) for i in inputs) + _bytes_field(2, output)
                + _bytes_field(3, output) + _bytes_field(4, op_type)
                + b"".join(_bytes_field(5, _attribute(k, v)) for k, v in attributes.items()))
        self._nodes.append(body)
        return output

    def model(self, inputs: dict[str, tuple[int | str, ...]], outputs: dict[str, tuple[int | str, ...]],
              producer: str) -> bytes:
        """The ModelProto whose graph reads ``inputs`` and yields ``outputs`` (name -> dims), both float32."""
        graph = (b"".join(_bytes_field(1, n) for n in self._nodes) + _bytes_field(2, self.name)
                 + b"".join(_bytes_field(5, t) for t in self._initializers)
                 + b"".join(_bytes_field(11, _value_info(k, v)) for k, v in inputs.items())
                 + b"".join(_bytes_field(12, _value_info(k, v)) for k, v in outputs.items()))
        opset = _bytes_field(1, "") + _int_field(2, OPSET)
        return (_int_field(1, IR_VERSION) + _bytes_field(2, producer) + _bytes_field(7, graph)
                + _bytes_field(8, opset))
