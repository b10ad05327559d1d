"""One training step of a GAN: K D steps, one G step, the G EMA update, and on-device running stats.

Shapes: real images (N, C, H, W) in [-1, 1], labels (N,) int64 (conditional models) or None,
z (N, latent_dim). D's outputs are logits for ``ns`` and ``rpgan`` and critic values for ``hinge``/``wgan-gp``.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from onnxgan.errors import UserError, first_line

from . import losses
from .augment import augment
from .config import CONV_MODELS, ModelConfig, TrainConfig, auto_amp, cuda_graph_obstacle
from .distributed import World
from .ema_batchnorm import recompute_batchnorm_statistics
from .models import build_models, mixes_samples

Batch = tuple[torch.Tensor, "torch.Tensor | None"]  # (real images, their labels)


def native_bf16_cpu() -> bool:
    """True when this CPU multiplies bf16 in hardware (AVX-512 BF16 or AMX), where oneDNN's bf16 GEMMs
    run about twice as fast as fp32; AVX2 CPUs only emulate bf16 (slower than fp32)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private torch.cpu probes: guard them
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def resolve_amp(name: str, device: torch.device) -> str:
    """--amp as run: ``auto`` as config.auto_amp decides it for this device and CPU."""
    return auto_amp(device.type, native_bf16_cpu()) if name == "auto" else name


def resolve_cuda_graph(train_config: TrainConfig, device: torch.device, world: World) -> bool:
    """--cuda-graph as run: ``auto`` captures wherever config.cuda_graph_obstacle finds nothing in the way;
    ``on`` refuses where it cannot."""
    obstacle = cuda_graph_obstacle(train_config, device.type, world.distributed)
    if train_config.cuda_graph == "on" and obstacle:
        raise UserError(obstacle)
    return train_config.cuda_graph != "off" and obstacle is None


class GANTrainer:
    """G, D (and G EMA), their Adam optimisers and the running statistics between log points."""

    def __init__(self, model_config: ModelConfig, train_config: TrainConfig, device: torch.device,
                 world: World = World()):
        self.device, self.world = device, world
        self.latent_dim, self.num_classes = model_config.latent_dim, model_config.num_classes
        self.loss, self.gp_weight, self.r1 = train_config.loss, train_config.gp_weight, train_config.r1
        self.gamma, self.reg_every, self.augment = train_config.gamma, train_config.reg_every, train_config.augment
        self.d_steps, self.ema_decay = train_config.d_steps, train_config.ema_decay
        if world.distributed and (self.loss == "wgan-gp" or self.r1 > 0 or self.gamma > 0):
            raise UserError("--loss wgan-gp, --r1 and --gamma differentiate D's gradients, which "
                            "DistributedDataParallel cannot do; train them in one process")
        if model_config.d_mbstd_group and train_config.batch_size % model_config.d_mbstd_group:
            raise UserError(f"--batch-size {train_config.batch_size} must be a multiple of the minibatch-stddev "
                            f"group ({model_config.d_mbstd_group})")
        G, D = build_models(model_config)
        # Conv models on the CPU run channels-last (NHWC, oneDNN's own layout): dcgan's step 1.1x faster in
        # fp32 and 1.03x in bf16 on a Zen 5, batch 64, measured against the default layout in one process.
        self.memory_format = (torch.channels_last if model_config.name in CONV_MODELS and device.type == "cpu"
                              else torch.contiguous_format)
        G, D = G.to(memory_format=self.memory_format), D.to(memory_format=self.memory_format)
        # The EMA G is never trained: it keeps plain BatchNorm even under --sync-bn, so recomputing its
        # statistics (--ema-bn recompute) is no collective and may run on one rank alone.
        self.G_ema = copy.deepcopy(G).to(device).eval().requires_grad_(False) if self.ema_decay else None
        self.ema_bn, self._ema_version, self._calibrated_version = train_config.ema_bn, 0, -1
        if train_config.sync_bn:
            if device.type != "cuda" or not world.distributed:
                raise UserError("--sync-bn needs several CUDA processes (torchrun on GPUs); drop it here")
            G = nn.SyncBatchNorm.convert_sync_batchnorm(G)
        # Plain modules hold the state and serve eval and the G step's pass through D; the DDP
        # wrappers (the same modules when alone) average gradients across ranks in backward.
        self.G, self.D = G.to(device), D.to(device)
        self.G_step, self.D_step = (self.G, self.D) if not world.distributed else (
            DistributedDataParallel(m, device_ids=[device.index] if device.type == "cuda" else None)
            for m in (self.G, self.D))
        self.D_eval = self.D  # D for the G step: no gradient of D's weights, no DDP averaging
        # The G step feeds D fakes alone; a D whose layers mix samples (BatchNorm, minibatch stddev) must
        # then see real and fake apart in its own step too, as the tutorials train it. Any other D sees
        # both in one pass: one larger GEMM per layer.
        self.d_passes = 2 if mixes_samples(self.D) else 1
        if train_config.compile:
            # The state stays in the plain modules; only the callables used in the step are compiled.
            self.G_step, self.D_step, self.D_eval = (torch.compile(m) for m in (self.G_step, self.D_step, self.D))
        self.amp = resolve_amp(train_config.amp, device)  # what --amp auto picked, for config.json
        self.amp_dtype = {"none": None, "bf16": torch.bfloat16}[self.amp]
        self.cuda_graph = resolve_cuda_graph(train_config, device, world)  # what auto picked, for config.json
        betas, graphed = (train_config.beta1, train_config.beta2), self.cuda_graph
        # fused: one kernel per optimiser instead of ~10 per parameter tensor (Adam was 28% of a CPU step);
        # capturable keeps Adam's step count on the device, as a CUDA graph needs.
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=train_config.lr, betas=betas, fused=True,
                                      capturable=graphed)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=train_config.d_lr or train_config.lr, betas=betas,
                                      fused=True, capturable=graphed)
        self._sums = torch.zeros(4, device=device)  # d_loss, g_loss, D(x), D(G(z)) summed since last read
        self._count = 0
        self._ema_weight = torch.zeros((), device=device)  # 1 - decay, a tensor so a CUDA graph reads it
        self._captured = CapturedStep(self) if graphed else None

    def _fake_labels(self, n: int) -> torch.Tensor | None:
        if not self.num_classes:
            return None
        return torch.randint(self.num_classes, (n,), device=self.device)

    def _autocast(self):
        """bf16 autocast around forward passes (--amp bf16); backward runs outside it, as advised."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.bfloat16,
                              enabled=self.amp_dtype is not None)

    def step(self, batches: list[Batch], step: int) -> None:
        """D steps, one per batch, then one G step on the last D step's G(z); ``step`` counts G steps done."""
        self._ema_weight.fill_(1.0 - min(self.ema_decay, (1 + step) / (10 + step)))  # EMA warm-up
        if self._captured is not None:
            self._captured.run(batches)
        else:
            self._step(batches, step)
        self._count += 1
        self._ema_version += 1

    def _step(self, batches: list[Batch], step: int) -> None:
        """The step's work, all on the device (a CUDA graph can capture it); ``step`` picks the D steps
        that take the lazy penalties."""
        for k, (real, real_labels) in enumerate(batches):
            real = real.contiguous(memory_format=self.memory_format)  # (N, C, H, W), G's and D's layout
            n = real.shape[0]
            z = torch.randn(n, self.latent_dim, device=self.device)  # (N, latent_dim)
            fake_labels = self._fake_labels(n)
            with self._autocast():
                if k == len(batches) - 1:
                    fake = self.G_step(z, fake_labels)  # (N, C, H, W), graph kept for the G step
                else:
                    with torch.no_grad():
                        fake = self.G(z, fake_labels)
            regularise = (step * self.d_steps + k) % self.reg_every == 0  # lazy regularisation
            d_loss, real_out, fake_out = self._d_step(real, real_labels, fake.detach(), fake_labels, regularise)

        # G step through the updated D. D's own weight gradients are not needed here, so autograd
        # skips them (about 8% of an mlp step's FLOPs); the plain D (not its DDP wrapper) is used
        # because no gradient of D is averaged in this step.
        self.D.requires_grad_(False)
        with self._autocast():
            fake_scores = self.D_eval(augment(fake, self.augment), fake_labels)  # (N,)
            real_scores = None
            if self.loss in losses.RELATIVISTIC:  # the pairing loss compares with D(x) of the updated D
                with torch.no_grad():
                    real_scores = self.D_eval(augment(real, self.augment), real_labels)  # (N,)
            g_loss = losses.g_loss(self.loss, fake_scores, real_scores)
        self.opt_G.zero_grad(set_to_none=True)
        g_loss.backward()
        self.D.requires_grad_(True)
        self.opt_G.step()
        if self.G_ema is not None:
            self._update_ema()

        with torch.no_grad():
            squash = torch.sigmoid if self.loss == "ns" else (lambda t: t)  # P(real) for ns, raw otherwise
            self._sums += torch.stack([d_loss, g_loss, squash(real_out).mean(), squash(fake_out).mean()]).float()

    def _d_step(self, real: torch.Tensor, real_labels, fake: torch.Tensor, fake_labels, regularise: bool):
        """One D update; returns (d_loss, D(real), D(fake)) detached from nothing (for stats).

        The zero-centred penalties (--r1 on real, --gamma on real and fake) are taken at D's input (the
        augmented images), on D steps where ``regularise`` holds, weighted by --reg-every.
        """
        n = real.shape[0]
        penalised = regularise and (self.r1 > 0 or self.gamma > 0)
        labels = None if real_labels is None else torch.cat([real_labels, fake_labels])
        images = augment(torch.cat([real, fake]), self.augment).detach().requires_grad_(penalised)  # (2N, C, H, W)
        with self._autocast():
            outputs = self.D_step(images, labels, passes=self.d_passes)  # (2N,): real then fake
            real_out, fake_out = outputs.split(n)  # (N,), (N,)
            loss = losses.d_loss(self.loss, real_out.float(), fake_out.float())
            if self.loss == "wgan-gp":
                loss = loss + self.gp_weight * losses.gradient_penalty(self.D, real, fake, real_labels)
            if penalised:
                norms = losses.squared_gradient_norms(outputs.float(), images)  # (2N,)
                real_norm, fake_norm = norms[:n].mean(), norms[n:].mean()
                penalty = (self.r1 + self.gamma) * real_norm + self.gamma * fake_norm  # R1 and R2 weights
                loss = loss + 0.5 * self.reg_every * penalty
        self.opt_D.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_D.step()
        return loss.detach(), real_out.detach(), fake_out.detach()

    @torch.no_grad()
    def _update_ema(self) -> None:
        """G_ema <- decay G_ema + (1 - decay) G, with decay warmed up as min(decay, (1 + t) / (10 + t))."""
        for ema, current in zip(self.G_ema.parameters(), self.G.parameters()):
            ema.lerp_(current, self._ema_weight)
        if self.ema_bn == "copy":
            for ema, current in zip(self.G_ema.buffers(), self.G.buffers()):
                ema.copy_(current)  # BatchNorm statistics follow G itself

    def read_stats(self) -> dict[str, float]:
        """Means since the last read (over all ranks); the only host sync in the loop."""
        d_loss, g_loss, d_real, d_fake = self.world.mean_(self._sums / max(self._count, 1)).tolist()
        self._sums.zero_()
        self._count = 0
        return {"d_loss": d_loss, "g_loss": g_loss, "D(x)": d_real, "D(G(z))": d_fake}

    def weights_finite(self) -> bool:
        """False when a NaN/Inf reached any weight of G or D (a host sync: call at log points)."""
        flags = [torch.isfinite(p).all() for m in (self.G, self.D) for p in m.parameters()]
        return bool(torch.stack(flags).all())

    def ema_generator(self) -> nn.Module:
        """The EMA G; under --ema-bn recompute its BatchNorm statistics are recomputed first (at most once a step)."""
        if self.ema_bn == "recompute" and self._calibrated_version != self._ema_version:
            recompute_batchnorm_statistics(self.G_ema, self.latent_dim, self.num_classes, self.device)
            self._calibrated_version = self._ema_version
        return self.G_ema

    @torch.no_grad()
    def images(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> np.ndarray:
        """The EMA G's (or G's) eval-mode images: z (N, latent_dim) -> float32 numpy (N, C, H, W)."""
        G = self.ema_generator() if self.G_ema is not None else self.G
        was_training = G.training
        G.eval()
        try:
            return G(z, labels).float().cpu().numpy()
        finally:
            G.train(was_training)

    def state(self) -> dict:
        state = {"G": self.G.state_dict(), "D": self.D.state_dict(),
                 "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict()}
        if self.G_ema is not None:
            state["G_ema"] = self.ema_generator().state_dict()
        return state

    def load_state(self, state: dict) -> None:
        """A checkpoint's states; tensors that do not fit the model its config builds are a UserError."""
        parts = [(self.G, "G"), (self.D, "D"), (self.opt_G, "opt_G"), (self.opt_D, "opt_D")]
        for target, key in parts + ([(self.G_ema, "G_ema")] if self.G_ema is not None else []):
            try:
                target.load_state_dict(state[key])
            except (RuntimeError, ValueError, KeyError) as e:
                raise UserError(f"the checkpoint's {key} does not fit its model config ({first_line(e)})") from None


class CapturedStep:
    """--cuda-graph: the first steps run eagerly on a side stream (warm-up, as CUDA graphs require), the
    next one is captured, and from then on each step copies its batch into static tensors and replays.
    Built only where resolve_cuda_graph allows it (one CUDA process, no penalties, --d-steps 1).

    Written from PyTorch's whole-network capture recipe; tests/test_cuda.py checks it on a GPU against eager
    steps and across a resume (benchmarks/gpu_check.py runs them).
    """

    WARMUP_STEPS = 3

    def __init__(self, trainer: GANTrainer):
        self.trainer, self.eager_steps = trainer, 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static: list[Batch] = []

    def run(self, batches: list[Batch]) -> None:
        if self.eager_steps < self.WARMUP_STEPS:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self.trainer._step(batches, 0)  # no penalties here (refused above): the step is moot
            torch.cuda.current_stream().wait_stream(side)
            self.eager_steps += 1
            return
        (real, labels), = batches
        if self.graph is None:
            self.static = [(real.clone(), None if labels is None else labels.clone())]
            for optimizer in (self.trainer.opt_G, self.trainer.opt_D):
                optimizer.zero_grad(set_to_none=True)  # backward re-creates .grad in the graph's pool
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.trainer._step(self.static, 0)  # recorded, not run: the replay below runs it
        static_real, static_labels = self.static[0]
        static_real.copy_(real)
        if static_labels is not None:
            static_labels.copy_(labels)
        self.graph.replay()
