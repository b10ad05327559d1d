"""Both readers of model.onnx keep one contract (docs/onnx-contract.md): every mutation of a valid
model's metadata or graph interface goes through ``Sampler(backend="onnxruntime")`` (runtime/contract.py)
and ``_native.Model.from_bytes`` (cpp/src/metadata.cpp, graph_interface.cpp); both must accept it, or both
refuse it for the same reason: ``<subject> '<name>' <verdict>``. Also: Python maps pixels through the
model's value_range on both backends, and random metadata texts get one verdict from both readers."""
from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from kit import DATA
from onnxgan.errors import UserError
from onnxgan.runtime import Sampler
from onnxgan.runtime.contract import VERDICTS

from onnxgan.runtime import _native  # every install builds it

VALID = onnx.load(DATA / "native_tiny.onnx")  # conditional (3 classes), z (N, 6), image (N, 1, 3, 4), fp16
REASON = re.compile(rf"(metadata|input|output) '([^']*)' ({'|'.join(VERDICTS)})")


def metadata(**changes: str | None):
    """Replace metadata values (None deletes the key)."""
    def mutate(model: onnx.ModelProto) -> None:
        props = {p.key: p.value for p in model.metadata_props}
        props.update(changes)
        del model.metadata_props[:]
        helper.set_model_props(model, {key: value for key, value in props.items() if value is not None})
    return mutate


def value(kind: str, name: str, rename: str | None = None, elem_type: int | None = None, dims: list | None = None):
    """Change a graph input or output: its name, element type or dims."""
    def mutate(model: onnx.ModelProto) -> None:
        info = next(v for v in getattr(model.graph, kind) if v.name == name)
        if rename is not None:
            info.name = rename
        if elem_type is not None:
            info.type.tensor_type.elem_type = elem_type
        if dims is not None:
            info.CopyFrom(helper.make_tensor_value_info(info.name, info.type.tensor_type.elem_type, dims))
    return mutate


def extra(kind: str, name: str):
    """Add a float input or output that the contract does not have."""
    def mutate(model: onnx.ModelProto) -> None:
        getattr(model.graph, kind).append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 2]))
    return mutate


KEYS = [p.key for p in VALID.metadata_props]
VALUES = {  # key -> texts to put in its place, one mutation each: wrong types, ranges, edges of JSON
    "onnxgan_format": ['"1"', "2", "99999999999999999999"],
    "model": ["5", '"G \\u00e9\\ud83d\\ude00"', '"a\\x"', '"mlp'],
    "latent_dim": ['"6"', "6.0", "6e0", "06", "true", "0", "-6", "4294967302", "18446744073709551622", "7",
                   " \t6\n", "6 7"],
    "image_shape": ["{}", "[1, 3.0, 4]", "[3, 4]", "[1, 1, 3, 4]", "[0, 3, 4]", "[1, 4, 3]", "[1, 3, 4,]",
                    "[[1], 3, 4]"],
    "num_classes": ["-1", "3.5"],
    "class_names": ["[1, 2, 3]", '["a"]', "[]", '["\\u00e9", "\\"b\\"", "c\\n"]'],
    "training_step": ["-1", "null", "9223372036854775807", "9223372036854775808"],
    "package_version": ['["0"]'],
    "weights_dtype": ['"int8"', "16"],
    "value_range": ["[1, -1]", "[1, 1]", "[0]", '["a", 1]', "[NaN, 1]", "[-Infinity, 1]", "[-1e999, 1]",
                    "[1e-999, 1]", "[-1e39, 1]", "[1, 1.00000001]", "[0, 1]", "[-2.5E+0, 25e-1]", "[-1., 1]"],
    "latent_rng": ['"mt19937"', "1", '"\\ud800"'],  # a lone surrogate: the native message must stay UTF-8
}
MUTATIONS = {
    **{f"missing-{key}": metadata(**{key: None}) for key in KEYS},
    **{f"{key}={text}": metadata(**{key: text}) for key, texts in VALUES.items() for text in texts},
    "unconditional-with-label": metadata(num_classes="0", class_names="[]"),
    "unknown-keys": metadata(note='"hello"', other="{not json"),
    "z-renamed": value("input", "z", rename="x"), "z-double": value("input", "z", elem_type=TensorProto.DOUBLE),
    "z-rank-3": value("input", "z", dims=["N", 6, 1]), "z-width-7": value("input", "z", dims=["N", 7]),
    "z-symbolic-width": value("input", "z", dims=["N", "L"]),
    "label-renamed": value("input", "label", rename="labels"),
    "label-int32": value("input", "label", elem_type=TensorProto.INT32),
    "label-rank-2": value("input", "label", dims=["N", 1]),
    "extra-input": extra("input", "noise"),
    "image-renamed": value("output", "image", rename="picture"),
    "image-double": value("output", "image", elem_type=TensorProto.DOUBLE),
    "image-rank-3": value("output", "image", dims=["N", 3, 4]),
    "image-transposed": value("output", "image", dims=["N", 1, 4, 3]),
    "image-symbolic": value("output", "image", dims=["N", 1, "H", 4]),
    "extra-output": extra("output", "features"),
}


def verdict(load) -> tuple[str, ...]:
    """("accepted",) or the refusal's (subject, name, verdict); a refusal in other words fails."""
    try:
        load()
    except (UserError, ValueError) as e:
        found = REASON.search(str(e))
        assert found, f"a refusal outside the contract's words: {e}"
        return found.groups()
    return ("accepted",)


@pytest.mark.parametrize("name", MUTATIONS)
def test_both_readers_accept_or_refuse_for_the_same_reason(name):
    model = onnx.ModelProto()
    model.CopyFrom(VALID)
    MUTATIONS[name](model)
    data = model.SerializeToString()
    python = verdict(lambda: Sampler(data, backend="onnxruntime", device="cpu"))
    native = verdict(lambda: _native.Model.from_bytes(data, threads=1))
    assert python == native, f"{name}: onnxruntime reader {python}, native reader {native}"


def test_the_mutations_cover_every_verdict_and_acceptance():
    seen = set()
    for mutate in MUTATIONS.values():
        model = onnx.ModelProto()
        model.CopyFrom(VALID)
        mutate(model)
        seen.add(verdict(lambda: _native.Model.from_bytes(model.SerializeToString(), threads=1))[-1])
    assert seen == {*VERDICTS, "accepted"}


# Pieces of JSON texts, valid and not, for random metadata values (the native messages quote them too).
ATOMS = ["0", "1", "-1", "6", "3", "1.5", "1e2", "1E-2", "-0", "00", "1.", ".5", "+1", '"a"', '"\\u00e9"',
         '"\\ud800"', '"\\uZZZZ"', '"\\/"', "true", "null", "NaN", "Infinity", "[", "]", ",", " ", "{}", '"',
         "\\", "1e400", "1e-400", "\t", '"x\\ty"', "9" * 20, "-" + "9" * 19, "[1, 3, 4]", '"float16"',
         '"splitmix64-boxmuller-v1"', "\x01", '"\x01"', "é", '"é"']


def test_random_metadata_texts_get_the_same_verdict_from_both_readers():
    rng = np.random.default_rng(12)
    for trial in range(400):
        key = KEYS[rng.integers(len(KEYS))]
        pieces = [ATOMS[i] for i in rng.integers(len(ATOMS), size=int(rng.integers(0, 5)))]
        text = "[" + ",".join(pieces) + "]" if trial % 2 else "".join(pieces)
        model = onnx.ModelProto()
        model.CopyFrom(VALID)
        metadata(**{key: text})(model)
        data = model.SerializeToString()
        python = verdict(lambda: Sampler(data, backend="onnxruntime", device="cpu"))
        native = verdict(lambda: _native.Model.from_bytes(data, threads=1))
        assert python == native, f"{key} = {text!r}: onnxruntime reader {python}, native reader {native}"


@pytest.mark.parametrize("value_range", [(0.0, 1.0), (-1.0, 1.0), (-3.0, 0.5)])
def test_pixels_follow_the_value_range_on_both_backends(value_range):
    model = onnx.ModelProto()
    model.CopyFrom(VALID)
    metadata(value_range=f"[{value_range[0]}, {value_range[1]}]")(model)
    data = model.SerializeToString()
    labels = np.arange(40, dtype=np.int64) % 3
    low, high = value_range
    for backend in ("onnxruntime", "native"):
        sampler = Sampler(data, backend=backend, device="cpu")
        floats = sampler.generate(sampler.latent(40, seed=5), labels)  # (40, 1, 3, 4)
        expected = np.clip(np.rint((floats[:, 0].astype(np.float64) - low) * 255 / (high - low)), 0, 255)
        assert np.array_equal(sampler.sample(40, seed=5), expected.astype(np.uint8)), backend
        assert sampler.info()["value_range"] == list(value_range)


WHOLE_FILE_WORDS = re.compile(r"^(not an ONNX model|the file is cut short) \(")
BYTES = (DATA / "native_tiny.onnx").read_bytes()


@pytest.mark.parametrize("data, words", [
    (b"", "not an ONNX model"),
    (b"hello, I am a text file, not a model\n", "not an ONNX model"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "not an ONNX model"),
    (b"\x08\x08", "not an ONNX model"),  # ir_version alone: no graph
    (b"\x3a\xff\xff\xff\xff\x0f", "not an ONNX model"),  # a graph claiming 4 GiB, in a file that is no model
    (BYTES[:3], "the file is cut short"),
    (BYTES[: len(BYTES) // 2], "the file is cut short"),
    (BYTES[:-1], "the file is cut short"),
], ids=["empty", "text", "png", "no-graph", "huge-graph", "cut-at-3", "cut-in-half", "cut-by-1"])
def test_both_readers_refuse_a_whole_file_in_the_same_words(data, words):
    """The words a user sees in the CLI (Python's reader), a C program and the page (the native reader):
    "not an ONNX model" or "the file is cut short", then the detail in parentheses."""
    with pytest.raises(UserError) as python:
        Sampler(data)
    with pytest.raises(ValueError) as native:
        _native.Model.from_bytes(data)
    said = [str(python.value).removeprefix("<model bytes>: "), str(native.value)]
    assert [WHOLE_FILE_WORDS.match(text) and WHOLE_FILE_WORDS.match(text)[1] for text in said] == [words, words], said
