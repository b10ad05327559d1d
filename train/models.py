"""Generators and discriminators, built from a ``ModelConfig`` alone.

``mlp`` (the Keras MLP GAN): G latent-256-512-1024-784, LeakyReLU(0.2), tanh; D 784-1024-512-256-1,
LeakyReLU(0.2), dropout 0.3, returning logits. ``mlp-bn``: the same G with BatchNorm beside each
hidden activation (before it by default, after it as in the Keras tutorial; momentum 0.2, i.e. Keras'
0.8), D 784-512-256-1 (the keras-mlp-bn preset: the tutorial's 784-784-392-1). ``activation`` and ``init`` change the mlp models' activations and every model's
initial weights (the TensorFlow tutorial: ReLU, truncated normal).
``dcgan``: G Linear -> 128 x H/4 x W/4 -> 64 x H/2 x W/2 -> C x H x W with transposed convolutions,
BatchNorm + ReLU, tanh; D two 5x5 stride-2 convolutions (64, 128), LeakyReLU(0.2), dropout 0.3, a
linear logit. ``dcgan-upsample`` (the Keras DCGAN) and ``dcgan-fc`` (the PaddlePaddle DCGAN): see
their classes.

D options for every model: spectral normalisation of every weight of D (``d_spectral_norm``) and a
minibatch standard deviation feature joined to D's last features (``d_mbstd_group``, Karras et al.
2018), which lets D see a batch's lack of variety.

Conditional variants (``num_classes > 0``): G joins a label embedding to z; D is a projection
discriminator (logit = head(h) + <embed(label), h>, Miyato & Koyama 2018).
"""
from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig


class Dropout(nn.Module):
    """Inverted dropout drawing its mask with ``torch.rand``: the same distribution as ``nn.Dropout``,
    but on CPU ``rand`` is about 3.5x faster than the ``bernoulli_`` that ``nn.Dropout`` calls (1.0 vs
    0.28 ms for a (128, 1024) mask here), which was 14% of an ``mlp`` training step."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand_like(x) >= self.p  # same shape as x, bool
        return x * keep / (1.0 - self.p)


class LatentInput(nn.Module):
    """z (N, latent_dim) [+ labels (N,)] -> (N, latent_dim [+ label_dim]): G's input layer."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.embed = nn.Embedding(config.num_classes, config.label_dim) if config.num_classes else None
        self.width = config.latent_dim + (config.label_dim if config.num_classes else 0)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if self.embed is None:
            return z
        return torch.cat([z, self.embed(labels)], dim=1)


class MinibatchStd(nn.Module):
    """h (N, F) -> (N, F + 1): the mean over features of the standard deviation within each group of
    ``group`` consecutive samples, repeated for the group's members. It mixes samples, so the D step runs
    real and fake in separate passes (``mixes_samples``), and the trainer checks that the batch size is a
    multiple of the group."""

    def __init__(self, group: int):
        super().__init__()
        self.group = group

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        n, features = h.shape
        group = min(self.group, n)
        grouped = h.view(n // group, group, features)  # (N/G, G, F)
        spread = grouped.var(dim=1, unbiased=False).add(1e-8).sqrt().mean(dim=1)  # (N/G,)
        return torch.cat([h, spread.repeat_interleave(group).unsqueeze(1)], dim=1)


class ProjectionHead(nn.Module):
    """D's features h (N, F) [+ labels (N,)] -> logits (N,), with the minibatch-stddev feature first
    when the config asks for it."""

    def __init__(self, config: ModelConfig, features: int):
        super().__init__()
        self.mbstd = MinibatchStd(config.d_mbstd_group) if config.d_mbstd_group else None
        features += 1 if self.mbstd is not None else 0
        self.linear = nn.Linear(features, 1)
        self.embed = nn.Embedding(config.num_classes, features) if config.num_classes else None
        if self.embed is not None:
            # Embedding's N(0, 1) init makes <embed, h> over thousands of features swamp the logit at
            # the start (g_loss ~15 for dcgan); Xavier keeps it on the head's scale (as Miyato & Koyama).
            nn.init.xavier_uniform_(self.embed.weight)

    def forward(self, h: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if self.mbstd is not None:
            h = self.mbstd(h)  # (N, F + 1)
        logits = self.linear(h).squeeze(1)  # (N,)
        if self.embed is not None:
            logits = logits + (self.embed(labels) * h).sum(dim=1)
        return logits


def activation(config: ModelConfig) -> nn.Module:
    """The hidden-layer activation the config names (mlp models and dcgan-upsample's D)."""
    return nn.ReLU() if config.activation == "relu" else nn.LeakyReLU(config.leaky_slope)


def batch_norm(config: ModelConfig, width: int, dims: int = 1) -> nn.Module:
    norm = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
    return norm(width, eps=config.bn_eps, momentum=config.bn_momentum)


class MLPGenerator(nn.Module):
    """z (N, latent_dim) [, labels (N,)] -> image (N, C, H, W) in [-1, 1]."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.image_shape = config.image_shape
        self.input = LatentInput(config)
        layers: list[nn.Module] = []
        width_in = self.input.width
        for width in config.g_hidden:
            hidden = [nn.Linear(width_in, width), activation(config)]
            if config.name == "mlp-bn":  # Keras' tutorial puts BatchNorm after the activation
                hidden.insert(1 if config.bn_position == "before-activation" else 2, batch_norm(config, width))
            layers += hidden
            width_in = width
        layers += [nn.Linear(width_in, config.image_size), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self.input(z, labels)).view(-1, *self.image_shape)  # (N, C*H*W) -> (N, C, H, W)


def mixes_samples(module: nn.Module) -> bool:
    """True when some layer of ``module`` computes a sample's output from other samples of its batch
    (BatchNorm in training mode, the minibatch-stddev feature): such a D must see real and fake in
    separate passes, or the D the G step sees (fakes alone) is not the D the D step trained."""
    return any(isinstance(layer, (nn.modules.batchnorm._BatchNorm, MinibatchStd)) for layer in module.modules())


class Discriminator(nn.Module):
    """What every D shares: images (N, C, H, W) [, labels (N,)] -> ``features`` (N, F) -> ``head`` ->
    logits (N,). A subclass builds both.

    ``passes`` > 1 splits the batch into that many equal parts run one after the other (the D step's
    real and fake halves), in one call so that a DistributedDataParallel wrapper sees one forward."""

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None, passes: int = 1) -> torch.Tensor:
        if passes == 1:
            return self.head(self.features(images), labels)
        parts = labels.chunk(passes) if labels is not None else (None,) * passes
        return torch.cat([self.head(self.features(x), part) for x, part in zip(images.chunk(passes), parts)])


class MLPDiscriminator(Discriminator):
    """image (N, C, H, W) in [-1, 1] [, labels (N,)] -> logit (N,); sigmoid(logit) = P(real)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width_in = config.image_size
        for width in config.d_hidden:
            layers += [nn.Linear(width_in, width), activation(config)]
            if config.d_dropout > 0:
                layers.append(Dropout(config.d_dropout))
            width_in = width
        self.features = nn.Sequential(*layers)
        self.head = ProjectionHead(config, width_in)


class ProjectedConvGenerator(nn.Module):
    """What the conv Gs share: z [, labels] -> ``project`` -> (c0, H/4, W/4) -> ``net`` -> (N, C, H, W) in
    [-1, 1]. A subclass builds ``project`` (to c0 * H/4 * W/4 features) and ``net``."""

    def __init__(self, config: ModelConfig, start_channels: int):
        super().__init__()
        _, height, width = config.image_shape
        self.start_shape = (start_channels, height // 4, width // 4)
        self.start_size = start_channels * (height // 4) * (width // 4)
        self.input = LatentInput(config)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.project(self.input(z, labels)).view(-1, *self.start_shape)  # (N, c0, H/4, W/4)
        return self.net(h)  # (N, C, H, W)


class ConvGenerator(ProjectedConvGenerator):
    """DCGAN G: z [, labels] -> Linear -> (c0, H/4, W/4) -> (c1, H/2, W/2) -> (C, H, W) in [-1, 1]."""

    def __init__(self, config: ModelConfig):
        wide, narrow = config.g_hidden
        super().__init__(config, wide)
        self.project = nn.Sequential(nn.Linear(self.input.width, self.start_size, bias=False),
                                     batch_norm(config, self.start_size), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(wide, narrow, 4, stride=2, padding=1, bias=False),  # x2 in each side
            batch_norm(config, narrow, dims=2), nn.ReLU(),
            nn.ConvTranspose2d(narrow, config.image_shape[0], 4, stride=2, padding=1), nn.Tanh())


class ConvDiscriminator(Discriminator):
    """DCGAN D: (N, C, H, W) [, labels] -> 5x5/2 convs 64 -> 128, LeakyReLU, dropout -> logit (N,)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        channels, height, width = config.image_shape
        layers: list[nn.Module] = []
        width_in, side_h, side_w = channels, height, width
        for width_out in config.d_hidden:
            layers += [nn.Conv2d(width_in, width_out, 5, stride=2, padding=2), nn.LeakyReLU(config.leaky_slope)]
            if config.d_dropout > 0:
                layers.append(Dropout(config.d_dropout))
            width_in, side_h, side_w = width_out, (side_h + 1) // 2, (side_w + 1) // 2  # ceil(side / 2)
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        self.head = ProjectionHead(config, width_in * side_h * side_w)


class UpsampleConvGenerator(ProjectedConvGenerator):
    """Keras DCGAN G: z [, labels] -> Dense -> (c0, H/4, W/4) -> nearest x2 -> 5x5 conv c1, ReLU ->
    nearest x2 -> 5x5 conv C, tanh -> (N, C, H, W) in [-1, 1] (no BatchNorm, no activation after Dense)."""

    def __init__(self, config: ModelConfig):
        wide, narrow = config.g_hidden
        super().__init__(config, wide)
        self.project = nn.Linear(self.input.width, self.start_size)
        self.net = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(wide, narrow, 5, padding=2), nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(narrow, config.image_shape[0], 5, padding=2),
            nn.Tanh())


class UpsampleConvDiscriminator(Discriminator):
    """Keras DCGAN D: 5x5/2 conv c0, LeakyReLU, dropout -> 5x5/2 conv c1 -> zero pad right and bottom by
    one -> BatchNorm -> LeakyReLU, dropout -> logit."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        channels, height, width = config.image_shape
        first, second = config.d_hidden
        dropout = [Dropout(config.d_dropout)] if config.d_dropout > 0 else []
        self.features = nn.Sequential(
            nn.Conv2d(channels, first, 5, stride=2, padding=2), nn.LeakyReLU(config.leaky_slope), *dropout,
            nn.Conv2d(first, second, 5, stride=2, padding=2), nn.ZeroPad2d((0, 1, 0, 1)),
            batch_norm(config, second, dims=2), nn.LeakyReLU(config.leaky_slope), *dropout, nn.Flatten())
        self.head = ProjectionHead(config, second * (height // 4 + 1) * (width // 4 + 1))


class FullyConnectedConvGenerator(ProjectedConvGenerator):
    """PaddlePaddle DCGAN G: z [, labels] -> fc f, BatchNorm, ReLU -> fc c0 x H/4 x W/4, BatchNorm, ReLU ->
    5x5/2 transposed conv c1, ReLU -> 5x5/2 transposed conv C, tanh -> (N, C, H, W) in [-1, 1]."""

    def __init__(self, config: ModelConfig):
        fc, wide, narrow = config.g_hidden
        super().__init__(config, wide)
        self.project = nn.Sequential(
            nn.Linear(self.input.width, fc), batch_norm(config, fc), nn.ReLU(),
            nn.Linear(fc, self.start_size), batch_norm(config, self.start_size), nn.ReLU())
        self.net = nn.Sequential(  # 5x5, stride 2, padding 2, output padding 1: each side doubles
            nn.ConvTranspose2d(wide, narrow, 5, stride=2, padding=2, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(narrow, config.image_shape[0], 5, stride=2, padding=2, output_padding=1), nn.Tanh())


class PoolingDiscriminator(Discriminator):
    """PaddlePaddle DCGAN D: 5x5 conv c0 + 2x2 max-pool, LeakyReLU -> 5x5 conv c1 + max-pool, BatchNorm,
    LeakyReLU -> fc f, BatchNorm, LeakyReLU -> logit. Convolutions keep the side (padding 2)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        channels, height, width = config.image_shape
        first, second, fc = config.d_hidden
        slope = config.leaky_slope
        self.features = nn.Sequential(
            nn.Conv2d(channels, first, 5, padding=2), nn.MaxPool2d(2), nn.LeakyReLU(slope),
            nn.Conv2d(first, second, 5, padding=2), nn.MaxPool2d(2), batch_norm(config, second, dims=2),
            nn.LeakyReLU(slope), nn.Flatten(),
            nn.Linear(second * (height // 4) * (width // 4), fc), batch_norm(config, fc), nn.LeakyReLU(slope))
        self.head = ProjectionHead(config, fc)


ARCHITECTURES = {  # model name -> (G class, D class)
    "mlp": (MLPGenerator, MLPDiscriminator),
    "mlp-bn": (MLPGenerator, MLPDiscriminator),
    "dcgan": (ConvGenerator, ConvDiscriminator),
    "dcgan-upsample": (UpsampleConvGenerator, UpsampleConvDiscriminator),
    "dcgan-fc": (FullyConnectedConvGenerator, PoolingDiscriminator),
}


def initialise(module: nn.Module, init: str) -> nn.Module:
    """Re-draw every Linear and convolution weight as ``init`` says (``torch`` keeps torch's defaults)."""
    if init == "torch":
        return module
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            if init == "glorot-uniform":
                nn.init.xavier_uniform_(layer.weight)
            elif init == "normal-0.02":  # Radford et al. 2016, section 4
                nn.init.normal_(layer.weight, std=0.02)
            else:  # truncated-normal-0.1: TF's truncated_normal(stddev=0.1), redrawn beyond 2 sd
                nn.init.trunc_normal_(layer.weight, std=0.1, a=-0.2, b=0.2)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module


def spectral_normalise(module: nn.Module) -> nn.Module:
    """Spectral normalisation (one power iteration per forward) on every Linear and Conv weight."""
    for layer in list(module.modules()):
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.utils.parametrizations.spectral_norm(layer)
    return module


def build_models(config: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """(G, D) for a resolved, validated config, freshly initialised from torch's current RNG."""
    generator_class, discriminator_class = ARCHITECTURES[config.name]
    G, D = (initialise(net, config.init) for net in (generator_class(config), discriminator_class(config)))
    return G, spectral_normalise(D) if config.d_spectral_norm else D
