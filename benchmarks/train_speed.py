"""Steps/s of onnxgan's trainer against a faithful PyTorch-GAN ``gan.py``-style baseline, in one process.

Both rates are steady state (the first 50 steps excluded). Both train the seed MLP shapes (G
100-256-512-1024-784, D 784-1024-512-256-1) on MNIST with batch 64 and Adam(2e-4, (0.5, 0.999)). The
baseline is written the way implementations/gan/gan.py is: a DataLoader over a TensorDataset with
shuffle, Sigmoid + BCELoss, the G step before the D step, fresh label tensors every step and
``.item()`` on both losses every step. onnxgan runs as gan-train does by default (``--amp auto``: bf16
autocast on CPUs with native bf16); the table says which ran.

Second table: ``GANTrainer.step`` of ``dcgan`` (batch 64, MNIST batches) as gan-train runs it now
(``--amp auto``, channels-last on the CPU) against its anchor, the step as it ran before both (fp32, the
default contiguous layout): issue 15's "current rate".
Third table: the step of ``dcgan-upsample`` (the keras-dcgan preset's model, BatchNorm in D) with D's real
and fake halves in separate passes, as gan-train runs a D whose layers mix samples, against one pass over
both, as it ran before (issue 20: the price of a correct D step).
Rounds are interleaved (the machine is shared and noisy); the median of each side and their ratio are
printed.

    python benchmarks/train_speed.py [--steps 300] [--dcgan-steps 60] [--rounds 3] [--device cpu]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from onnxgan.train.config import ModelConfig, TrainConfig
from onnxgan.train.data import load_mnist
from onnxgan.train.loop import train
from onnxgan.train.trainer import GANTrainer, native_bf16_cpu

LATENT, G_HIDDEN, D_HIDDEN, BATCH = 100, (256, 512, 1024), (1024, 512, 256), 64
WARMUP = 50  # steps excluded from both rates (first allocations, thread pools, lazy imports)


class BaselineGenerator(nn.Module):
    def __init__(self):
        super().__init__()

        def block(in_feat, out_feat):
            return [nn.Linear(in_feat, out_feat), nn.LeakyReLU(0.2, inplace=True)]

        widths = (LATENT, *G_HIDDEN)
        layers = [layer for a, b in zip(widths, widths[1:]) for layer in block(a, b)]
        self.model = nn.Sequential(*layers, nn.Linear(G_HIDDEN[-1], 784), nn.Tanh())

    def forward(self, z):
        img = self.model(z)
        return img.view(img.size(0), 1, 28, 28)


class BaselineDiscriminator(nn.Module):
    def __init__(self):
        super().__init__()
        widths = (784, *D_HIDDEN)
        layers = []
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(0.3)]
        self.model = nn.Sequential(*layers, nn.Linear(D_HIDDEN[-1], 1), nn.Sigmoid())

    def forward(self, img):
        return self.model(img.view(img.size(0), -1))


def baseline_train(generator: nn.Module, discriminator: nn.Module, dataset: TensorDataset, device: torch.device,
                   steps: int | None = None, seconds: float | None = None, clock: list | None = None,
                   timer=time.perf_counter) -> int:
    """The gan.py-style loop for ``steps`` batches or ``seconds`` of ``timer`` (wall time by default);
    returns the steps done. ``clock``, when given, receives the wall time at the end of every step."""
    generator, discriminator = generator.to(device), discriminator.to(device)
    adversarial_loss = nn.BCELoss()
    optimizer_G = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizer_D = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    dataloader = DataLoader(dataset, batch_size=BATCH, shuffle=True, drop_last=True)
    done, deadline = 0, timer() + (seconds if seconds is not None else float("inf"))
    while True:
        for (imgs,) in dataloader:
            if done == steps or timer() >= deadline:
                return done
            imgs = imgs.to(device)
            valid = torch.ones(imgs.size(0), 1, device=device)
            fake = torch.zeros(imgs.size(0), 1, device=device)

            optimizer_G.zero_grad()
            z = torch.randn(imgs.shape[0], LATENT, device=device)
            gen_imgs = generator(z)
            g_loss = adversarial_loss(discriminator(gen_imgs), valid)
            g_loss.backward()
            optimizer_G.step()

            optimizer_D.zero_grad()
            real_loss = adversarial_loss(discriminator(imgs), valid)
            fake_loss = adversarial_loss(discriminator(gen_imgs.detach()), fake)
            d_loss = (real_loss + fake_loss) / 2
            d_loss.backward()
            optimizer_D.step()
            _ = (d_loss.item(), g_loss.item())  # gan.py prints both every batch
            done += 1
            if clock is not None:
                clock.append(time.perf_counter())


def baseline_steps(dataset: TensorDataset, steps: int, device: torch.device) -> float:
    """Steady-state steps/s of the gan.py-style loop: the steps after the first WARMUP."""
    clock: list[float] = []
    baseline_train(BaselineGenerator(), BaselineDiscriminator(), dataset, device, steps=steps, clock=clock)
    return (steps - WARMUP) / (clock[-1] - clock[WARMUP - 1])


def onnxgan_steps(data, model_config: ModelConfig, steps: int, device: str, folder: Path,
                  amp: str = "auto") -> tuple[float, str]:
    """Steady-state steps/s of onnxgan's loop (the code gan-train runs, EMA included), from the rates it
    logs every WARMUP steps after the first WARMUP, and the --amp that ran; the grid and report written at
    the end are not timed."""
    train_config = TrainConfig(steps=steps, batch_size=BATCH, device=device, log_every=WARMUP, amp=amp,
                               sample_every=10**9, ckpt_every=10**9, eval_every=0)
    train(model_config, train_config, data, folder, progress=False)
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    first, last = rows[0], rows[-1]  # the first row ends the warm-up
    ran = json.loads((folder / "config.json").read_text())["amp"]
    return (last["step"] - first["step"]) / (last["wall_time"] - first["wall_time"]), ran


def trainer_steps(dataset: TensorDataset, model_config: ModelConfig, steps: int, device: torch.device,
                  before: bool, d_passes: int | None = None) -> tuple[float, str]:
    """Steps/s of ``GANTrainer.step`` on batches of ``dataset`` after 5 untimed steps, and the amp that
    ran. ``before``: fp32 with every tensor in the default contiguous layout, as the step ran before
    --amp auto and channels-last. ``d_passes`` forces D's passes in its step (None: the model's own)."""
    trainer = GANTrainer(model_config, TrainConfig(batch_size=BATCH, amp="none" if before else "auto"), device)
    trainer.d_passes = d_passes or trainer.d_passes
    if before:
        trainer.memory_format = torch.contiguous_format
        for module in (trainer.G, trainer.D, trainer.G_ema):
            module.to(memory_format=torch.contiguous_format)
    (images,) = dataset.tensors  # (N, 1, 28, 28) in [-1, 1]
    batches = [images[i * BATCH:(i + 1) * BATCH].to(device) for i in range(steps + 5)]
    for step, real in enumerate(batches[:5]):
        trainer.step([(real, None)], step)
    start = time.perf_counter()
    for step, real in enumerate(batches[5:]):
        trainer.step([(real, None)], step)
    trainer.read_stats()  # waits for the device
    return steps / (time.perf_counter() - start), trainer.amp


def print_table(title: str, rows: dict[str, list[float]], goal: str) -> None:
    """Median steps/s per row; the last row is the anchor of the ratio."""
    medians = {name: statistics.median(rates) for name, rates in rows.items()}
    print(f"\n{title}")
    print(f"{'':26}{'steps/s':>10}{'s/1000 steps':>14}")
    for name, rate in medians.items():
        print(f"{name:26}{rate:10.1f}{1000 / rate:14.1f}")
    (ours, o), (anchor, a) = medians.items()
    print(f"ratio {ours} / {anchor}: {o / a:.2f} ({goal})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--dcgan-steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    data = load_mnist("train")
    dataset = TensorDataset(torch.from_numpy(data.images).float().div(127.5).sub(1.0))
    mlp = ModelConfig(name="mlp", latent_dim=LATENT, g_hidden=G_HIDDEN, d_hidden=D_HIDDEN).resolved()
    dcgan = ModelConfig(name="dcgan").resolved()
    upsample = ModelConfig(name="dcgan-upsample", bn_eps=1e-3).resolved()
    mlp_rows: dict[str, list[float]] = {}
    dcgan_rows: dict[str, list[float]] = {}
    passes_rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(args.rounds + 1):  # round 0 warms everything up and is not counted
            folder = Path(tmp) / f"round{round_index}"
            ours, amp = onnxgan_steps(data, mlp, args.steps, args.device, folder / "mlp")
            theirs = baseline_steps(dataset, args.steps, device)
            dc_now, dc_amp = trainer_steps(dataset, dcgan, args.dcgan_steps, device, before=False)
            dc_fp32, _ = trainer_steps(dataset, dcgan, args.dcgan_steps, device, before=True)
            two_passes, _ = trainer_steps(dataset, upsample, args.dcgan_steps, device, before=False)
            one_pass, _ = trainer_steps(dataset, upsample, args.dcgan_steps, device, before=False, d_passes=1)
            if round_index:
                for rows, name, rate in ((mlp_rows, f"onnxgan (amp {amp})", ours),
                                         (mlp_rows, "gan.py baseline", theirs),
                                         (dcgan_rows, f"dcgan (amp {dc_amp}, NHWC)", dc_now),
                                         (dcgan_rows, "dcgan fp32, NCHW (before)", dc_fp32),
                                         (passes_rows, "D real, fake apart (now)", two_passes),
                                         (passes_rows, "D on both in one pass", one_pass)):
                    rows.setdefault(name, []).append(rate)
                print(f"round {round_index}: onnxgan {ours:7.1f}  baseline {theirs:7.1f}  dcgan {dc_now:6.1f}  "
                      f"dcgan fp32 {dc_fp32:6.1f}  D passes 2 {two_passes:6.1f} 1 {one_pass:6.1f} steps/s", flush=True)
    print(f"\nbatch {BATCH}, {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"native bf16: {native_bf16_cpu()}")
    print_table("mlp (G 100-256-512-1024-784, D 784-1024-512-256-1)", mlp_rows, "goal >= 2")
    print_table("dcgan", dcgan_rows, "goal >= 1.5")
    print_table("dcgan-upsample (BatchNorm in D), D's passes", passes_rows, "the price of separate passes; "
                "no goal")


if __name__ == "__main__":
    main()
