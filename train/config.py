"""The two frozen configs that flow from the CLI to the loop: what the model is, and how it trains.

Click options map one to one onto these fields; ``validate()`` raises ``UserError`` with a message that
says how to fix the value. Both round-trip through plain dicts (config.json, checkpoints).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from onnxgan.datasets import MAX_IMAGE_SIDE
from onnxgan.errors import UserError

MODEL_NAMES = ("mlp", "mlp-bn", "dcgan", "dcgan-upsample", "dcgan-fc")
CONV_MODELS = ("dcgan", "dcgan-upsample", "dcgan-fc")
AMPS = ("auto", "none", "bf16")  # --amp; trainer.resolve_amp says what auto picks
EMA_BN = ("copy", "recompute")  # --ema-bn: the EMA G's BatchNorm statistics copied from G, or recomputed
CUDA_GRAPHS = ("auto", "on", "off")  # --cuda-graph; trainer.resolve_cuda_graph says what auto picks
EVAL_REAL = ("auto", "on", "off")  # --eval-real; train/scoring.py says what auto picks
ACTIVATIONS = ("leaky_relu", "relu")
# torch's defaults, Keras' default, TF's N(0, 0.1) cut at 2 sd, the DCGAN paper's N(0, 0.02) (PaddleGAN's DCGAN)
INITS = ("torch", "glorot-uniform", "truncated-normal-0.1", "normal-0.02")
BN_POSITIONS = ("before-activation", "after-activation")
LOSSES = ("ns", "hinge", "wgan-gp", "rpgan")
AUGMENTS = ("translation", "cutout")  # DiffAugment-style, applied to every image D sees
DEVICES = ("auto", "cpu", "cuda")

# Hidden widths per model, from the tutorials the product grew out of (mlp-bn: see below).
# For dcgan the widths are channels: G (H/4-side, H/2-side), D (first conv, second conv).
DEFAULT_WIDTHS = {
    "mlp": {"g_hidden": (256, 512, 1024), "d_hidden": (1024, 512, 256), "d_dropout": 0.3},
    # mlp-bn's D is narrower than the Keras tutorial's 784-784-392 (the keras-mlp-bn preset): at equal CPU
    # time 512-256 scored better (benchmarks/quality.py; README's Benchmarks).
    "mlp-bn": {"g_hidden": (256, 512, 1024), "d_hidden": (512, 256), "d_dropout": 0.0},
    "dcgan": {"g_hidden": (128, 64), "d_hidden": (64, 128), "d_dropout": 0.3},
    # Keras DCGAN: G channels at H/4 (after the Dense) and after the first 5x5 conv; D conv channels.
    "dcgan-upsample": {"g_hidden": (128, 64), "d_hidden": (64, 128), "d_dropout": 0.3},
    # PaddlePaddle DCGAN: G fc width, channels at H/4, channels at H/2; D conv, conv channels, fc width.
    "dcgan-fc": {"g_hidden": (2048, 128, 128), "d_hidden": (64, 128, 1024), "d_dropout": 0.0},
}


# Above this side, or in colour, the default G is a conv one: an MLP G's output layer grows with the pixels
# (3x64x64: 12288 x 1024 weights) and shares nothing between neighbouring pixels.
MLP_MAX_SIDE = 32


# The default recipe's choices that are no field's default, each beside its reason (the fields below hold
# the rest). The steps: about 4 minutes of the default recipe on 2 AVX2 cores in fp32, 2 with native bf16,
# evaluations included (measured; docs/quality.md).
DEFAULT_STEPS = 10000


def conditional_by_default(cond: bool | None, has_labels: bool) -> bool:
    """--cond / --no-cond as given, else conditional exactly when the data has labels: MNIST does, and a
    conditional G gives all ten digits, balanced, and a digit picker when sampling."""
    return has_labels if cond is None else cond


def auto_amp(device_type: str, native_bf16: bool) -> str:
    """What --amp auto runs: bf16 on a CPU that multiplies bf16 natively (the default recipe ran 1.6x the
    steps/s of fp32 on a Zen 5 at the same quality per step: docs/quality.md), fp32 elsewhere (AVX2 CPUs
    only emulate bf16, slower than fp32; on CUDA the default MLP step is launch-bound, so bf16 buys little)."""
    return "bf16" if device_type == "cpu" and native_bf16 else "none"


def cuda_graph_obstacle(train_config: "TrainConfig", device_type: str, distributed: bool) -> str | None:
    """Why one D+G step cannot be captured as a CUDA graph (None: it can). --cuda-graph auto captures
    wherever it can: on an H200 the default recipe's step ran 7x eager's rate at batch 64, 4x at 512 (it is
    bound by kernel launches; docs/gpu.md)."""
    if device_type != "cuda":
        return "--cuda-graph needs --device cuda (a GPU); drop it on the CPU"
    if distributed or train_config.compile or train_config.d_steps != 1:
        return "--cuda-graph works alone: one process, no --compile (use it instead), --d-steps 1"
    if train_config.loss == "wgan-gp" or train_config.r1 > 0 or train_config.gamma > 0:
        return "--cuda-graph does not capture gradient penalties (--loss wgan-gp, --r1, --gamma)"
    return None


def model_for_data(image_shape: tuple[int, int, int]) -> tuple[str, str]:
    """The model a run gets when neither --model nor a preset names one, for (C, H, W) data, and why."""
    channels, height, width = image_shape
    shape = f"{channels}x{height}x{width}"
    if channels == 3 or max(height, width) > MLP_MAX_SIDE:
        kind = "colour" if channels == 3 else f"larger than {MLP_MAX_SIDE}x{MLP_MAX_SIDE}"
        return "dcgan", f"dcgan: the data is {shape} ({kind}), so a conv G"
    return ModelConfig.name, (f"{ModelConfig.name}: the data is {shape} (grey, at most {MLP_MAX_SIDE}x{MLP_MAX_SIDE}), "
                              "the default recipe's MLP")


@dataclass(frozen=True)
class Bound:
    """The range of one numeric field: low..high, each end open or closed; every value must be finite."""

    low: float
    high: float = math.inf
    open_low: bool = False
    open_high: bool = False

    def holds(self, value: float) -> bool:
        return (math.isfinite(value) and (value > self.low if self.open_low else value >= self.low)
                and (value < self.high if self.open_high else value <= self.high))

    def __str__(self) -> str:
        if self.high == math.inf:
            return f"{'>' if self.open_low else '>='} {self.low:g}"
        return f"{'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}"


UNIT = Bound(0.0, 1.0)  # [0, 1]
BELOW_ONE = Bound(0.0, 1.0, open_high=True)  # [0, 1): dropouts, Adam betas, the EMA decay
POSITIVE_TO_ONE = Bound(0.0, 1.0, open_low=True)  # (0, 1]: learning rates, BatchNorm momentum and eps
NON_NEGATIVE = Bound(0.0)  # penalty weights, counts where 0 means off
AT_LEAST_ONE = Bound(1)

# Every numeric field of both configs and its range, in one place (tests/test_config_numbers.py checks
# that none is missing); the option that sets a field is --field-name unless OPTION_NAMES says otherwise.
NUMBER_BOUNDS: dict[str, Bound] = {
    # ModelConfig
    "latent_dim": Bound(1, 4096), "num_classes": Bound(0, 4096), "label_dim": Bound(1, 1024),
    "d_dropout": BELOW_ONE, "bn_momentum": POSITIVE_TO_ONE, "leaky_slope": BELOW_ONE, "bn_eps": POSITIVE_TO_ONE,
    "d_mbstd_group": Bound(0, 64),
    # TrainConfig
    "steps": NON_NEGATIVE, "epochs": NON_NEGATIVE, "batch_size": Bound(1, 65536), "lr": POSITIVE_TO_ONE,
    "d_lr": UNIT, "beta1": BELOW_ONE, "beta2": BELOW_ONE, "seed": Bound(0, 2**63, open_high=True),
    "log_every": AT_LEAST_ONE, "sample_every": AT_LEAST_ONE, "ckpt_every": AT_LEAST_ONE, "gp_weight": NON_NEGATIVE,
    "r1": NON_NEGATIVE, "gamma": NON_NEGATIVE, "reg_every": AT_LEAST_ONE, "d_steps": AT_LEAST_ONE,
    "ema_decay": BELOW_ONE, "eval_every": NON_NEGATIVE, "eval_samples": Bound(100, 100_000),
    "image_size": Bound(0, MAX_IMAGE_SIDE), "channels": Bound(0, 3),  # and not 1..3, not 2: TrainConfig.validate
}
OPTION_NAMES = {"d_mbstd_group": "--d-mbstd", "num_classes": "the number of classes", "label_dim": "label_dim",
                "leaky_slope": "leaky_slope", "d_dropout": "D dropout (--d-dropout)"}


def check_numbers(config: Any) -> None:
    """A ``UserError`` naming the first numeric field of ``config`` that is not finite or is outside its
    NUMBER_BOUNDS (NaN and Inf included: ``--gamma nan`` would train with the penalty off)."""
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        bound = NUMBER_BOUNDS[item.name]
        if not bound.holds(value):
            name = OPTION_NAMES.get(item.name, "--" + item.name.replace("_", "-"))
            what = "an integer" if isinstance(value, int) else "a finite number"
            raise UserError(f"{name} must be {what} {'in ' if bound.high != math.inf else ''}{bound}, got {value}")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild G and D from nothing but this record."""

    name: str = "mlp-bn"  # the default recipe (README: Train); G exports as a plain MLP, BatchNorm folded
    latent_dim: int = 100
    image_shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W)
    num_classes: int = 0  # 0: unconditional; the data's label count for conditional models (--cond)
    class_names: tuple[str, ...] = ()
    label_dim: int = 16  # size of G's label embedding, joined to z
    g_hidden: tuple[int, ...] = ()  # () -> the model's default widths
    d_hidden: tuple[int, ...] = ()
    d_dropout: float = -1.0  # < 0 -> the model's default
    bn_momentum: float = 0.2  # torch momentum; Keras' momentum 0.8 means torch 0.2
    leaky_slope: float = 0.2
    activation: str = "leaky_relu"  # hidden layers of mlp models (ACTIVATIONS); leaky_slope for leaky_relu
    init: str = "torch"  # weight initialisation of G and D (INITS); biases start at 0 except for "torch"
    bn_position: str = "before-activation"  # mlp-bn: BatchNorm before or after each hidden activation
    bn_eps: float = 1e-5  # BatchNorm epsilon (Keras uses 1e-3)
    d_spectral_norm: bool = False  # spectral normalisation of D's weights (Miyato et al. 2018)
    d_mbstd_group: int = 0  # minibatch standard deviation feature in D over groups of this size (0: off)

    def resolved(self) -> "ModelConfig":
        """Fill model-dependent defaults (widths, dropout) so the record is complete."""
        self.validate_name()
        defaults = DEFAULT_WIDTHS[self.name]
        return dataclasses.replace(
            self,
            g_hidden=tuple(self.g_hidden) or defaults["g_hidden"],
            d_hidden=tuple(self.d_hidden) or defaults["d_hidden"],
            d_dropout=defaults["d_dropout"] if -math.inf < self.d_dropout < 0 else self.d_dropout,  # -inf: refused
        )

    def validate_name(self) -> None:
        if self.name not in MODEL_NAMES:
            raise UserError(f"unknown model {self.name!r}; choose one of: {', '.join(MODEL_NAMES)}")

    def validate(self) -> None:
        self.validate_name()
        check_numbers(self)
        if any(not 1 <= w <= 16384 for w in (*self.g_hidden, *self.d_hidden)):
            raise UserError("layer widths must be in 1..16384")
        c, h, w = self.image_shape
        if c not in (1, 3) or not (1 <= h <= 1024 and 1 <= w <= 1024):
            raise UserError(f"images must have 1 or 3 channels and sides up to 1024, got {self.image_shape}")
        for value, choices, what in ((self.activation, ACTIVATIONS, "activation"), (self.init, INITS, "init"),
                                     (self.bn_position, BN_POSITIONS, "bn_position")):
            if value not in choices:
                raise UserError(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}")
        if self.name in CONV_MODELS:
            if h % 4 or w % 4 or h < 8 or w < 8:
                raise UserError(f"{self.name} needs image sides that are multiples of 4 (e.g. 28 or 32), got {h}x{w}")
            expected = {name: (len(widths["g_hidden"]), len(widths["d_hidden"]))
                        for name, widths in DEFAULT_WIDTHS.items()}[self.name]
            if (len(self.g_hidden), len(self.d_hidden)) != expected:
                defaults = DEFAULT_WIDTHS[self.name]
                raise UserError(f"{self.name} takes {expected[0]} --g-hidden and {expected[1]} --d-hidden widths, "
                                f"e.g. {','.join(map(str, defaults['g_hidden']))} and "
                                f"{','.join(map(str, defaults['d_hidden']))}")
        if self.num_classes and len(self.class_names) != self.num_classes:
            raise UserError(f"{self.num_classes} classes but {len(self.class_names)} class names")
        if self.d_mbstd_group == 1:
            raise UserError("the minibatch-stddev group must be 0 (off) or 2..64, got 1")

    @property
    def image_size(self) -> int:
        c, h, w = self.image_shape
        return c * h * w

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        return cls(**_tuples(cls, data))


@dataclass(frozen=True)
class TrainConfig:
    """How to train: data, schedule, optimiser, device, outputs."""

    data: str = "mnist"
    image_size: int = 0  # a folder of images: every image resized and centre-cropped to N x N (0: as found)
    channels: int = 0  # a folder of images: 1 all grey, 3 all RGB (0: as found; any colour image makes all RGB)
    steps: int = 0  # 0 -> derived from epochs
    epochs: int = 0  # 0 with steps 0 -> DEFAULT_STEPS (above)
    batch_size: int = 128
    lr: float = 5e-4  # G's Adam learning rate (and D's when d_lr is 0)
    # D's learning rate (0: the same as lr). Twice G's is TTUR (Heusel et al. 2017): recall 0.73-0.74 at
    # 10000 steps over three seeds against 0.67-0.70 with D at 5e-4, equal FID (docs/quality.md).
    d_lr: float = 1e-3
    beta1: float = 0.5
    beta2: float = 0.999
    seed: int = 0
    device: str = "auto"
    out: str = ""  # "" -> runs/<model>-<timestamp>
    log_every: int = 100
    sample_every: int = 500
    ckpt_every: int = 2000
    sync_bn: bool = False  # SyncBatchNorm across torchrun processes (CUDA only)
    loss: str = "ns"  # LOSSES: ns (non-saturating, BCE on logits), hinge, wgan-gp, rpgan (R3GAN's pairing)
    gp_weight: float = 10.0  # wgan-gp's gradient penalty weight
    r1: float = 0.0  # R1 penalty weight gamma on real images (0: off)
    gamma: float = 0.0  # zero-centred penalties on real and fake images: gamma / 2 * (R1 + R2) (0: off)
    reg_every: int = 1  # lazy regularisation: the penalties every k-th D step, weighted by k
    augment: tuple[str, ...] = ()  # DiffAugment for D (AUGMENTS), on real and fake alike
    d_steps: int = 1  # D steps per G step, each on its own batch
    ema_decay: float = 0.998  # G EMA decay (0: no EMA); warm-up min(decay, (1+t)/(10+t))
    ema_bn: str = "copy"  # EMA_BN: the EMA G's BatchNorm statistics, G's own (copy) or its own (train/ema_batchnorm.py)
    eval_every: int = 1000  # steps between quality scores of the EMA G (0: never)
    eval_samples: int = 2000
    # EVAL_REAL: score in Inception features against the training data (train/scoring.py); auto = on for
    # data that is not MNIST-shaped when the weights are given (--inception, or the cached file)
    eval_real: str = "auto"
    inception: str = ""  # Inception weights: a .pth, "download" (once, into the user's cache), "" the cached file
    amp: str = "auto"  # AMPS: bf16 autocast around forward passes; auto = bf16 where the CPU has it natively
    compile: bool = False  # torch.compile G and D
    # CUDA_GRAPHS: capture one D+G step in a CUDA graph and replay it; auto = on where it can (one CUDA
    # process, no --compile, --d-steps 1, no gradient penalty): 4-7x eager's steps/s on an H200 (docs/gpu.md)
    cuda_graph: str = "auto"
    preset: str = ""  # the --preset the run started from ("" none): a record, the fields above hold its values
    preset_overrides: tuple[str, ...] = ()  # the preset's options that the command line changed

    def validate(self) -> None:
        check_numbers(self)
        if self.steps and self.epochs:
            raise UserError("give --steps or --epochs, not both")
        if self.device not in DEVICES:
            raise UserError(f"--device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.loss not in LOSSES:
            raise UserError(f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        unknown = set(self.augment) - set(AUGMENTS)
        if unknown:
            raise UserError(f"--augment takes a comma-separated list of {', '.join(AUGMENTS)}; "
                            f"unknown: {', '.join(sorted(unknown))}")
        if self.ema_bn not in EMA_BN:
            raise UserError(f"--ema-bn must be one of {', '.join(EMA_BN)}, got {self.ema_bn!r}")
        if self.ema_bn == "recompute" and not self.ema_decay:
            raise UserError("--ema-bn recompute acts on the EMA G, which --ema-decay 0 turns off")
        if self.amp not in AMPS:
            raise UserError(f"--amp must be one of {', '.join(AMPS)}, got {self.amp!r}")
        if self.cuda_graph not in CUDA_GRAPHS:
            raise UserError(f"--cuda-graph must be one of {', '.join(CUDA_GRAPHS)}, got {self.cuda_graph!r}")
        if self.image_size in (1, 2, 3) or self.channels == 2:
            raise UserError(f"--image-size must be 0 (as found) or 4..{MAX_IMAGE_SIDE} and --channels 0 (as found), "
                            f"1 or 3; got {self.image_size} and {self.channels}")
        if self.eval_real not in EVAL_REAL:
            raise UserError(f"--eval-real must be one of {', '.join(EVAL_REAL)}, got {self.eval_real!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        if isinstance(data.get("cuda_graph"), bool):  # written before --cuda-graph took auto|on|off
            data = {**data, "cuda_graph": "on" if data["cuda_graph"] else "off"}
        return cls(**_tuples(cls, data))


def _tuples(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """JSON and checkpoints give lists where the dataclass wants tuples; unknown keys are an error."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise UserError(f"unknown {cls.__name__} fields {sorted(unknown)}: was this written by a newer onnxgan?")
    return {k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
            for k, v in data.items()}
