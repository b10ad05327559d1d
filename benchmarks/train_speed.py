"""Steps/s of onnxgan's trainer against a faithful PyTorch-GAN ``gan.py``-style baseline, in one process.

Both rates are steady state (the first 50 steps excluded). Both train the seed MLP shapes (G 100-256-512-1024-784, D 784-1024-512-256-1) on MNIST with batch 64
and Adam(2e-4, (0.5, 0.999)). The baseline is written the way implementations/gan/gan.py is: a
DataLoader over a TensorDataset with shuffle, Sigmoid + BCELoss, the G step before the D step, fresh
label tensors every step and ``.item()`` on both losses every step. Rounds are interleaved (the machine
is shared and noisy); the median of each side and their ratio are printed.

    python benchmarks/train_speed.py [--steps 300] [--rounds 3] [--device cpu]
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


def onnxgan_steps(data, steps: int, device: str, folder: Path) -> float:
    """Steady-state steps/s of onnxgan's loop (the code gan-train runs, EMA included), from the rates it
    logs every WARMUP steps after the first WARMUP; the grid and report written at the end are not timed."""
    model_config = ModelConfig(name="mlp", latent_dim=LATENT, g_hidden=G_HIDDEN, d_hidden=D_HIDDEN).resolved()
    train_config = TrainConfig(steps=steps, batch_size=BATCH, device=device, log_every=WARMUP,
                               sample_every=10**9, ckpt_every=10**9, eval_every=0)
    train(model_config, train_config, data, folder, progress=False)
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    first, last = rows[0], rows[-1]  # the first row ends the warm-up
    return (last["step"] - first["step"]) / (last["wall_time"] - first["wall_time"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    data = load_mnist("train")
    dataset = TensorDataset(torch.from_numpy(data.images).float().div(127.5).sub(1.0))
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(args.rounds + 1):  # round 0 warms both up and is not counted
            a = onnxgan_steps(data, args.steps, args.device, Path(tmp) / f"run{round_index}")
            b = baseline_steps(dataset, args.steps, device)
            if round_index:
                ours.append(a)
                theirs.append(b)
                print(f"round {round_index}: onnxgan {a:7.1f} steps/s   baseline {b:7.1f} steps/s", flush=True)
    o, t = statistics.median(ours), statistics.median(theirs)
    print(f"\nmlp, batch {BATCH}, {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'':10}{'steps/s':>10}{'s/1000 steps':>14}")
    print(f"{'onnxgan':10}{o:10.1f}{1000 / o:14.1f}")
    print(f"{'baseline':10}{t:10.1f}{1000 / t:14.1f}")
    print(f"ratio onnxgan / baseline: {o / t:.2f} (goal >= 2)")


if __name__ == "__main__":
    main()
