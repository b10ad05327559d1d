"""Run under torchrun by test_distributed.py: after every step, both ranks must hold identical G and D.

Exit 0 when the replicas agree after each step and the ranks saw different batches; exit 1 otherwise.
"""
from __future__ import annotations

import sys

import torch

from onnxgan.train.config import ModelConfig, TrainConfig
from onnxgan.train.distributed import join_world, leave_world
from onnxgan.train.loop import rank_seed
from onnxgan.train.trainer import GANTrainer

STEPS = 5


def parameters(trainer: GANTrainer) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for m in (trainer.G, trainer.D) for p in m.parameters()])


def check_replicas(world, device) -> int:
    model_config = ModelConfig(name="mlp-bn", latent_dim=8, image_shape=(1, 6, 6), g_hidden=(16,),
                               d_hidden=(16,)).resolved()
    torch.manual_seed(0)
    trainer = GANTrainer(model_config, TrainConfig(batch_size=4), device, world)
    torch.manual_seed(rank_seed(0, world.rank))
    for step in range(STEPS):
        real = torch.rand(4, 1, 6, 6) * 2 - 1  # each rank its own batch
        trainer.step([(real, None)], step)
        replicas = world.gather(parameters(trainer))
        if not all(torch.equal(replicas[0], r) for r in replicas[1:]):
            print(f"rank {world.rank}: replicas differ after step {step + 1}", file=sys.stderr)
            return 1
    local_losses = world.gather(trainer._sums[0].item())
    if len(set(local_losses)) != world.size:
        print(f"ranks computed identical losses {local_losses}: they did not get their own data", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    world, device = join_world(torch.device("cpu"))
    try:
        return check_replicas(world, device)  # the DDP wrappers are gone before the group is torn down
    finally:
        leave_world(world)


if __name__ == "__main__":
    sys.exit(main())
