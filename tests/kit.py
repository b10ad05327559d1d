"""The tests' shared kit: tiny training options and runs, random image data, tiny models (checkpoints,
hand-built ONNX graphs), the metadata rewriter, CLI wrappers, the snapshot that shows a touched file, and
the scalar references that several rooms' tests compare against. Fixtures built on them live in conftest.py;
a test module imports this kit, never another test module (tests/test_house.py checks it).

torch is imported inside the helpers that need it, so that runtime tests never load it.
"""
from __future__ import annotations

import hashlib
import math
import signal
from pathlib import Path

import numpy as np
import onnx
from click.testing import CliRunner, Result
from onnx import TensorProto, helper, numpy_helper

from onnxgan.runtime.contract import ModelInfo

DATA = Path(__file__).parent / "data"
TINY_MODEL = DATA / "tiny_mlp.onnx"  # the committed tiny generator (tests/data/make_tiny_model.py writes it)
NATIVE_TINY = DATA / "native_tiny.onnx"

# A training run small enough for a second or two on a CPU (the loop is the same as for the full model):
# latent 8, G hidden 16-32, D hidden 32-16, batch 16, no evaluation. TRAIN adds 2 steps on the CPU.
TINY_RUN = ["--g-hidden", "16,32", "--d-hidden", "32,16", "--batch-size", "16", "--latent-dim", "8",
            "--eval-every", "0"]
TRAIN = [*TINY_RUN, "--steps", "2", "--device", "cpu"]


def random_images(count: int, side: int = 8, seed: int = 0) -> np.ndarray:
    """Random grey images, uint8 (count, side, side)."""
    return np.random.default_rng(seed).integers(0, 256, (count, side, side), dtype=np.uint8)


def image_data(path: Path, count: int = 64, side: int = 8, seed: int = 0, labels: np.ndarray | None = None) -> Path:
    """A data file gan-train reads: .npy of ``random_images(count, side, seed)``, or .npz with ``labels``."""
    if labels is None:
        np.save(path, random_images(count, side, seed))
    else:
        np.savez(path, images=random_images(count, side, seed), labels=labels)
    return path


def tiny_config(name: str = "mlp", **changes):
    """A small but complete ModelConfig: latent 8, G 8-16-32-64, images 1x8x8 (a conv model gets as many
    widths as its architecture takes)."""
    from onnxgan.train.config import CONV_MODELS, DEFAULT_WIDTHS, ModelConfig

    g_count, d_count = (len(DEFAULT_WIDTHS[name]["g_hidden"]), len(DEFAULT_WIDTHS[name]["d_hidden"])) \
        if name in CONV_MODELS else (2, 2)
    config = ModelConfig(name=name, latent_dim=8, g_hidden=(16, 32, 32)[:g_count], d_hidden=(32, 16, 16)[:d_count],
                         image_shape=(1, 8, 8), **changes).resolved()
    config.validate()
    return config


def write_checkpoint(path: Path, config, seed: int = 0, step: int = 3, ema: bool = False) -> Path:
    """A checkpoint as gan-train writes it, from fresh models with seeded random BatchNorm statistics
    (so that folding has something to fold) and real Adam states. ``ema`` adds a distinct G_ema."""
    import torch

    from onnxgan.train.checkpoint import save_checkpoint
    from onnxgan.train.config import TrainConfig
    from onnxgan.train.distributed import World
    from onnxgan.train.loop import rng_state
    from onnxgan.train.models import build_models

    torch.manual_seed(seed)
    G, D = build_models(config)
    for module in G.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.running_mean.normal_(0.0, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0.0, 0.1)
    optimizers = [torch.optim.Adam(model.parameters()) for model in (G, D)]
    state = {
        "model_config": config.to_dict(), "train_config": TrainConfig(seed=seed, batch_size=16).to_dict(),  # fits the tests' small data
        "G": G.state_dict(), "D": D.state_dict(),
        "opt_G": optimizers[0].state_dict(), "opt_D": optimizers[1].state_dict(),
        "step": step, "epoch": 0, "batch_in_epoch": step, "rng": World().gather(rng_state()),  # as gan-train
    }
    if ema:
        state["G_ema"] = {key: value * 0.5 if value.is_floating_point() else value
                          for key, value in G.state_dict().items()}
    save_checkpoint(path, state)
    return path



def run_train(*args: str) -> Result:
    """gan-train in-process with TINY_RUN and ``args`` (later options win); exceptions propagate."""
    from onnxgan.train.cli import main as gan_train

    return CliRunner().invoke(gan_train, [*TINY_RUN, *args], catch_exceptions=False)


def tensors_of(checkpoint: dict) -> dict[str, "torch.Tensor"]:
    """Every tensor in a checkpoint's G, D and optimiser states, flattened to name -> tensor."""
    import torch

    flat = {}

    def walk(prefix, value):
        if isinstance(value, torch.Tensor):
            flat[prefix] = value
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}", v)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(f"{prefix}.{i}", v)

    for key in ("G", "D", "opt_G", "opt_D", "G_ema"):
        if key in checkpoint:
            walk(key, checkpoint[key])
    return flat



def conditional_model(path, num_classes: int = 3, latent_dim: int = 4, seed: int = 0):
    """A contract-following conditional MLP built by hand: [z, embedding[label]] -> Gemm -> Tanh -> 1x2x2."""
    rng = np.random.default_rng(seed)
    embedding = rng.normal(size=(num_classes, 2)).astype(np.float32)  # (classes, E)
    weight = rng.normal(size=(4, latent_dim + 2)).astype(np.float32)  # (out, in)
    bias = rng.normal(size=(4,)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["embedding", "label"], ["e"], axis=0),
         helper.make_node("Concat", ["z", "e"], ["ze"], axis=1),
         helper.make_node("Gemm", ["ze", "weight", "bias"], ["h"], transB=1),
         helper.make_node("Tanh", ["h"], ["t"]),
         helper.make_node("Reshape", ["t", "shape"], ["image"])],
        "conditional",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", latent_dim]),
         helper.make_tensor_value_info("label", TensorProto.INT64, ["N"])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 2, 2])],
        [numpy_helper.from_array(embedding, "embedding"), numpy_helper.from_array(weight, "weight"),
         numpy_helper.from_array(bias, "bias"), numpy_helper.from_array(np.array([-1, 1, 2, 2], np.int64), "shape")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    info = ModelInfo(model="hand-cmlp", latent_dim=latent_dim, image_shape=(1, 2, 2), num_classes=num_classes,
                     class_names=tuple(f"c{i}" for i in range(num_classes)), training_step=0, package_version="0")
    helper.set_model_props(model, info.to_metadata())
    onnx.save(model, path)
    return path, (embedding, weight, bias)


def foreign_model(path):
    """A valid ONNX graph (Identity) without onnxgan metadata."""
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "foreign",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def with_metadata(source, path, **changes):
    """A copy of the model at ``source`` with some metadata_props replaced (None deletes a key)."""
    model = onnx.load(source)
    props = {p.key: p.value for p in model.metadata_props}
    props.update(changes)
    del model.metadata_props[:]
    helper.set_model_props(model, {k: v for k, v in props.items() if v is not None})
    onnx.save(model, path)
    return path



def make_mlp(latent_dim: int, widths: list[int], activations: list[str] | None = None, matmul: bool = False,
             seed: int = 0) -> onnx.ModelProto:
    """A random fp32 MLP generator graph: z (N, latent_dim) -> layers -> image (N, 1, 1, widths[-1]).

    Layers are Gemm(transB=1) or, with ``matmul``, MatMul + Add; activations default to LeakyRelu(0.2)
    and a final Tanh.
    """
    rng = np.random.default_rng(seed)
    activations = activations or ["LeakyRelu"] * (len(widths) - 1) + ["Tanh"]
    nodes, inits, x, width_in = [], [], "z", latent_dim
    for i, (width, act) in enumerate(zip(widths, activations)):
        w = (rng.standard_normal((width, width_in)) / np.sqrt(width_in)).astype(np.float32)  # (out, in)
        b = (rng.standard_normal(width) * 0.1).astype(np.float32)
        if matmul:
            inits += [numpy_helper.from_array(np.ascontiguousarray(w.T), f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
            nodes += [helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"]), helper.make_node("Add", [f"m{i}", f"b{i}"], [f"h{i}"])]
        else:
            inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
            nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [f"h{i}"], transB=1))
        extra = {"alpha": 0.2} if act == "LeakyRelu" else {}
        nodes.append(helper.make_node(act, [f"h{i}"], [f"a{i}"], **extra))
        x, width_in = f"a{i}", width
    inits.append(numpy_helper.from_array(np.array([-1, 1, 1, width_in], dtype=np.int64), "shape"))
    nodes.append(helper.make_node("Reshape", [x, "shape"], ["image"]))
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", latent_dim])],
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 1, width_in])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    info = ModelInfo(model="hand-mlp", latent_dim=latent_dim, image_shape=(1, 1, width_in), num_classes=0,
                     class_names=(), training_step=0, package_version="0")
    helper.set_model_props(model, info.to_metadata())
    return model



def run_sample(*args) -> Result:
    """gan-sample in-process; every argument passed as text."""
    from onnxgan.runtime.cli import main as gan_sample

    return CliRunner().invoke(gan_sample, [str(arg) for arg in args])



def invoke(main, args: list) -> Result:
    """A command in-process (click's CliRunner); every argument passed as text."""
    return CliRunner().invoke(main, [str(arg) for arg in args])


def assert_refused(result: Result, command: str, code: int, words: str) -> None:
    """One line ``command: error: ...words...``, exit ``code``, no exception escaped."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.exit_code == code, result.stderr or result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{result.stderr}"
    assert lines[0].startswith(f"{command}: error: ") and words in lines[0], lines[0]


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` -> the sha256 of its bytes ("" for folders): a changed byte shows."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
            for p in sorted(folder.rglob("*"))}


MASK = 2**64 - 1  # SplitMix64's words are 64-bit


def reference_normals(seed: int, count: int) -> list[float]:
    """The spec in runtime/latent.py's docstring, one Python int at a time (float64 until the end)."""
    def word(k: int) -> int:
        x = (seed + (k + 1) * 0x9E3779B97F4A7C15) & MASK
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
        return x ^ (x >> 31)

    values = []
    for j in range((count + 1) // 2):
        u1 = ((word(2 * j) >> 11) + 1) * 2.0**-53
        u2 = (word(2 * j + 1) >> 11) * 2.0**-53
        radius = math.sqrt(-2.0 * math.log(u1))
        values += [radius * math.cos(2 * math.pi * u2), radius * math.sin(2 * math.pi * u2)]
    return values[:count]


def as_from_a_terminal() -> None:
    """preexec_fn for a child that a test sends SIGINT: SIGINT's default disposition, as from a terminal.
    A test run started in the background of a script (``nohup ... &``, CI) inherits SIGINT ignored, and
    Python then leaves it ignored, so the child would never see the test's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
