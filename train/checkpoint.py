"""Checkpoint I/O in one pair (save/load) plus finding the checkpoint of a run.

A checkpoint is a plain dict of tensors and primitives (no pickled code; loads use
``torch.load(weights_only=True)``):

  format          "onnxgan-checkpoint"        format_version  1
  package_version the onnxgan that wrote it
  model_config    ModelConfig.to_dict()       train_config    TrainConfig.to_dict()
  G, D            state dicts                 opt_G, opt_D    Adam state dicts
  step            optimiser steps done        epoch           epoch of the next batch
  batch_in_epoch  index of the next batch in that epoch's permutation
  rng             one {"cpu": ByteTensor, "cuda": [ByteTensor per device]} per rank (torchrun)
"""
from __future__ import annotations

import dataclasses
import io
import os
import pickle
import time
import typing
from pathlib import Path
from typing import Any

import torch

from onnxgan import __version__
from onnxgan.errors import UserError, first_line
from onnxgan.files import atomic_write

from .config import ModelConfig, TrainConfig

FORMAT = "onnxgan-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("model_config", "train_config", "G", "D", "opt_G", "opt_D", "step", "epoch",
                 "batch_in_epoch", "rng")


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` (the keys above, without the format fields) atomically to ``path``."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "package_version": __version__, **state}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_write(path) as f:
        f.write(buffer.getbuffer())
        _test_only_pause(f)


def _test_only_pause(f) -> None:
    """TEST-ONLY hook (tests/test_crash.py): ONNXGAN_TEST_SLOW_CHECKPOINT_WRITE=SECONDS sleeps between
    writing the temp file and renaming it, so that a SIGKILL can land mid-write. Unset: nothing."""
    seconds = os.environ.get("ONNXGAN_TEST_SLOW_CHECKPOINT_WRITE")
    if seconds:
        f.flush()
        time.sleep(float(seconds))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a checkpoint; any fault is one ``UserError`` naming the file."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such checkpoint file")
    if not path.is_file():  # a named pipe would block torch.load forever
        raise UserError(f"{path}: not a regular file; give a checkpoint written by gan-train")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's text here advises weights_only=False: never for an unknown file
        raise UserError(f"{path}: not a readable onnxgan checkpoint (not a PyTorch file of plain tensors)") from None
    except Exception as e:  # noqa: BLE001 - torch's unpickler meets arbitrary bytes with any exception
        # (IndexError, KeyError, struct.error, ...): every one means the file is not a checkpoint.
        raise UserError(f"{path}: not a readable onnxgan checkpoint ({type(e).__name__}: {first_line(e)})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path}: not an onnxgan checkpoint (no '{FORMAT}' marker)")
    if state.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path}: checkpoint format {state.get('format_version')} is not supported "
                        f"by onnxgan {__version__} (expects {FORMAT_VERSION})")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise UserError(f"{path}: checkpoint is missing {', '.join(missing)}")
    _check_contents(path, state)
    return state


def _check_contents(path: Path, state: dict[str, Any]) -> None:
    """Every value a resumed run or an export reads, checked for type and range, so that a damaged or
    forged checkpoint is one line here and never an exception deep inside the loop."""
    for key, cls in (("model_config", ModelConfig), ("train_config", TrainConfig)):
        _check_config(path, key, cls, state[key])
    for key in ("G", "D", "opt_G", "opt_D"):
        if not isinstance(state[key], dict):
            raise UserError(f"{path}: the checkpoint's {key} is a {type(state[key]).__name__}, not a state dict")
    for key in ("step", "epoch", "batch_in_epoch"):
        if type(state[key]) is not int or state[key] < 0:
            raise UserError(f"{path}: the checkpoint's {key} is {state[key]!r}, not an integer >= 0")
    best_fid = state.get("best_fid", 0.0)
    if type(best_fid) not in (int, float):
        raise UserError(f"{path}: the checkpoint's best_fid is {best_fid!r}, not a number")
    rng, cpu_size = state["rng"], torch.get_rng_state().numel()
    if not isinstance(rng, list) or not rng or not all(_is_rng_state(r, cpu_size) for r in rng):
        raise UserError(f"{path}: the checkpoint's rng is not a list of RNG states (a {cpu_size}-byte CPU state "
                        "and CUDA states per process)")


def _check_config(path: Path, key: str, cls: type, record: Any) -> None:
    """``record`` must rebuild ``cls`` with every field of its declared type and pass ``validate()``."""
    if not isinstance(record, dict) or not all(isinstance(name, str) for name in record):
        raise UserError(f"{path}: the checkpoint's {key} is not a record of named fields")
    try:
        config = cls.from_dict(record)
    except UserError as e:
        raise UserError(f"{path}: the checkpoint's {key}: {e}") from None
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        value = getattr(config, field.name)
        if not _has_type(value, hints[field.name]):
            raise UserError(f"{path}: the checkpoint's {key}.{field.name} is {value!r}, not of type "
                            f"{getattr(hints[field.name], '__name__', hints[field.name])}")
    try:
        config.validate()
    except UserError as e:
        raise UserError(f"{path}: the checkpoint's {key} is invalid ({e})") from None


def _has_type(value: Any, hint: Any) -> bool:
    """int, float (ints accepted), str, bool, tuple[X, ...] and tuple[X, Y, Z]; bool is never a number."""
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_has_type(item, args[0]) for item in value)
        return len(value) == len(args) and all(_has_type(item, arg) for item, arg in zip(value, args))
    if hint is float:
        return type(value) in (int, float)
    return type(value) is hint


def _is_rng_state(state: Any, cpu_size: int) -> bool:
    def is_bytes(t: Any) -> bool:
        return isinstance(t, torch.Tensor) and t.dtype == torch.uint8 and t.dim() == 1

    return (isinstance(state, dict) and is_bytes(state.get("cpu")) and state["cpu"].numel() == cpu_size
            and isinstance(state.get("cuda"), list) and all(is_bytes(t) for t in state["cuda"]))


def resolve_checkpoint(run_dir_or_checkpoint: str | os.PathLike) -> Path:
    """A checkpoint file as given; for a run directory ``checkpoints/last.pt``, or its newest ``step_N.pt``
    when a kill came before last.pt was first renamed into place (it is written after step_N.pt)."""
    path = Path(run_dir_or_checkpoint)
    if path.is_dir():
        last = path / "checkpoints" / "last.pt"
        if last.is_file():
            return last
        saved = sorted((path / "checkpoints").glob("step_*.pt"))  # zero-padded: name order is step order
        if not saved:
            raise UserError(f"{path}: no checkpoints/last.pt in this folder (nor a step_N.pt); is it a gan-train "
                            "run directory?")
        return saved[-1]
    if not path.exists():
        raise UserError(f"{path}: no such run directory or checkpoint")
    return path


def newest_run(runs_root: str | os.PathLike = "runs") -> Path:
    """The run directory under ``runs_root`` whose last checkpoint is the most recent."""
    root = Path(runs_root)
    candidates = [p for p in root.glob("*/checkpoints/last.pt") if p.is_file()] if root.is_dir() else []
    if not candidates:
        raise UserError(f"no trained run found under {root}/; train one with gan-train or name a checkpoint")
    return max(candidates, key=lambda p: p.stat().st_mtime).parent.parent
