"""Read a PyTorch state-dict file (.pth) into numpy arrays without torch and without running its code.

A .pth is a pickle, and unpickling executes whatever callables the file names; this reader allows
exactly the few that a state dict of plain tensors needs (``collections.OrderedDict``,
``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter`` and the typed storages below), each
replaced by a numpy stand-in, and refuses every other name. Both of torch.save's layouts are read:

- zip (torch >= 1.6): ``<name>/data.pkl`` is the pickle, each storage the member ``<name>/data/<key>``;
  a storage is named by the persistent id ``("storage", StorageType, key, location, numel)``.
- legacy (earlier torch, e.g. pytorch-fid's published Inception weights): four pickles in a row (magic
  number, protocol version, system info, the object), then a pickled list of storage keys and, for each
  key in that order, an int64 element count followed by the storage's bytes. The persistent id carries
  a sixth entry, a view of another storage, which state dicts do not use (refused).

Every size is checked against the bytes present before anything is allocated.
"""
from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from onnxgan.errors import UserError, first_line

LEGACY_MAGIC, LEGACY_PROTOCOL = 0x1950A86A20F9469CFC6C, 1001
MAX_BYTES = 2 * 2**30  # read whole into memory: a larger file is not weights this reader is for
STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                  "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
                  "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}


class PthError(UserError):
    """The file is not a readable state dict of tensors; the message names the file and the fault."""

    def __init__(self, path: str | Path, fault: str):
        super().__init__(f"{path}: {fault}")


class _Storage:
    """A storage named by the pickle: its dtype and key; ``array`` is filled once its bytes are read."""

    def __init__(self, dtype: type, numel: int):
        self.dtype, self.numel = np.dtype(dtype), numel
        self.array: np.ndarray | None = None


class _Tensor:
    """A tensor as the pickle describes it: a strided view of a storage, resolved after loading."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def resolve(self, name: str) -> np.ndarray:
        """(size) array copied out of the storage, after a bounds check of every index the view reaches."""
        if any(s < 0 for s in self.size) or any(s < 0 for s in self.stride) or self.offset < 0:
            raise ValueError(f"{name}: negative size, stride or offset")
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) if all(self.size) else -1
        if last >= self.storage.numel:
            raise ValueError(f"{name}: the view reaches element {last} of a {self.storage.numel}-element storage")
        if int(np.prod(self.size, dtype=object)) > self.storage.numel:  # stride 0 would copy a storage many times
            raise ValueError(f"{name}: {self.size} elements from a {self.storage.numel}-element storage")
        base = self.storage.array
        if not all(self.size):
            return np.zeros(self.size, base.dtype)
        itemsize = base.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(base[self.offset :], self.size, [s * itemsize for s in self.stride])
        return np.array(view)  # a copy: the storage's buffer is not kept alive by the result


def _rebuild_tensor(storage, offset, size, stride, *_ignored):  # (requires_grad, hooks[, metadata])
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor whose storage is not a storage")
    return _Tensor(storage, int(offset), size, stride)


def _rebuild_parameter(data, *_ignored):  # (requires_grad, hooks): a Parameter is its tensor here
    return data


class _Unpickler(pickle.Unpickler):
    """Resolves only the names a state dict needs; storages come through ``persistent_load``."""

    ALLOWED = {("collections", "OrderedDict"): OrderedDict,
               ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
               ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
               **{("torch", name): name for name in STORAGE_DTYPES}}

    def __init__(self, file, storages: dict[str, _Storage], legacy: bool):
        super().__init__(file)
        self.storages, self.legacy = storages, legacy

    def find_class(self, module: str, name: str):
        try:
            return self.ALLOWED[module, name]
        except KeyError:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a state dict of tensors never needs "
                                         "(refused: unpickling would run it)") from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == (6 if self.legacy else 5) and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {str(pid)[:80]}")
        _, type_name, key, _location, numel = pid[:5]
        if self.legacy and pid[5] is not None:
            raise pickle.UnpicklingError("a storage view (not written by state_dict())")
        if type_name not in STORAGE_DTYPES or not isinstance(numel, int) or numel < 0:
            raise pickle.UnpicklingError(f"storage {str(key)[:40]} of type {str(type_name)[:40]} is not supported")
        return self.storages.setdefault(str(key), _Storage(STORAGE_DTYPES[type_name], numel))


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """``path`` (torch.save of a dict of tensors, either layout) -> {name: numpy array}."""
    path = Path(path)
    try:
        if not path.is_file():  # a named pipe would block, a folder is no file
            raise PthError(path, "not a regular file")
        if path.stat().st_size > MAX_BYTES:
            raise PthError(path, f"{path.stat().st_size / 2**30:.1f} GiB; a state dict here is at most "
                                 f"{MAX_BYTES / 2**30:.0f} GiB (pytorch-fid's Inception weights: 91 MB)")
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise PthError(path, f"cannot read ({e.strerror or e})") from None
    try:
        state = _load_zip(data) if zipfile.is_zipfile(io.BytesIO(data)) else _load_legacy(data)
        if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, _Tensor)
                                                  for k, v in state.items()):
            raise ValueError("the file holds something other than a dict of tensors")
        return {name: tensor.resolve(name) for name, tensor in state.items()}
    except PthError:
        raise
    # Hostile bytes make pickle raise almost anything (UnpicklingError, EOFError, ValueError, IndexError,
    # KeyError, MemoryError on a huge declared length, ...): each means "not a state dict we can read".
    except Exception as e:
        raise PthError(path, f"not a readable PyTorch state dict ({type(e).__name__}: {first_line(e)})") from None


def _load_zip(data: bytes) -> object:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ValueError(f"a zip without exactly one */data.pkl ({len(pickles)} found)")
        prefix = pickles[0][: -len("data.pkl")]
        storages: dict[str, _Storage] = {}
        state = _Unpickler(io.BytesIO(archive.read(pickles[0])), storages, legacy=False).load()
        for key, storage in storages.items():
            info = archive.getinfo(f"{prefix}data/{key}")
            _fill(storage, key, info.file_size, lambda: archive.read(info))
    return state


def _load_legacy(data: bytes) -> object:
    stream = io.BytesIO(data)
    storages: dict[str, _Storage] = {}
    magic, protocol, _system_info, state, keys = (_Unpickler(stream, storages, legacy=True).load() for _ in range(5))
    if (magic, protocol) != (LEGACY_MAGIC, LEGACY_PROTOCOL):
        raise ValueError("neither a zip nor a legacy torch.save file (wrong magic number)")
    if not isinstance(keys, list) or sorted(map(str, keys)) != sorted(storages):
        raise ValueError("the storage key list does not match the storages the pickle names")
    for key in map(str, keys):
        count = int.from_bytes(stream.read(8), "little", signed=True)
        storage = storages[key]
        if count != storage.numel:
            raise ValueError(f"storage {key} declares {count} elements, the pickle {storage.numel}")
        start = stream.tell()
        _fill(storage, key, len(data) - start, lambda: data[start : start + count * storage.dtype.itemsize])
        stream.seek(start + count * storage.dtype.itemsize)
    return state


def _fill(storage: _Storage, key: str, present: int, read) -> None:
    """Check the storage's declared bytes against the ``present`` ones, then ``read()`` them."""
    needed = storage.numel * storage.dtype.itemsize
    if needed > present:
        raise ValueError(f"storage {key} is truncated: {needed} bytes declared, {present} present")
    storage.array = np.frombuffer(read()[:needed], storage.dtype)
