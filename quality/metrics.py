"""Sample-quality metrics on feature vectors and class predictions; numpy only (no scipy, no torch).

- FID (Heusel et al. 2017): Fréchet distance between Gaussians fitted to two feature sets.
- KID (Binkowski et al. 2018): unbiased MMD^2 with the cubic polynomial kernel, averaged over subsets.
- Precision / recall (Kynkäänniemi et al. 2019): each set's manifold is the union of balls reaching each
  point's k-th nearest neighbour (k = 3); precision = share of generated points inside the real
  manifold, recall = share of real points inside the generated one.
- Class histogram, its KL to a reference histogram, the rarest class's share, conditional accuracy.
"""
from __future__ import annotations

import numpy as np

PR_K = 3  # neighbours behind each manifold ball (the paper's default)
KID_SUBSETS, KID_SUBSET_SIZE = 10, 1000
_ROWS = 1024  # rows of a distance matrix computed at once: bounds memory at _ROWS x N floats


def mean_cov(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """features (N, D) -> mean float64 (D,), covariance float64 (D, D) (unbiased, N - 1)."""
    x = features.astype(np.float64)
    if len(x) < 2:
        raise ValueError(f"a covariance needs at least 2 feature vectors, got {len(x)}")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (D, D) via eigh; tiny negative
    eigenvalues from rounding are clipped to 0."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def fid(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(cov1) + tr(cov2) - 2 tr((cov1 cov2)^(1/2)).

    tr((cov1 cov2)^(1/2)) = tr((S cov2 S)^(1/2)) with S = cov1^(1/2): S cov2 S is similar to cov1 cov2
    and symmetric PSD, so its eigenvalues come from eigh (real, >= 0 up to rounding), where scipy's
    general sqrtm may return complex noise.
    """
    root1 = _sqrt_psd(cov1)
    middle = root1 @ cov2 @ root1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    value = np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt
    return float(max(value, 0.0))  # rounding can leave -1e-12 for identical sets


def kid(features1: np.ndarray, features2: np.ndarray, seed: int = 0, subsets: int = KID_SUBSETS,
        subset_size: int = KID_SUBSET_SIZE) -> float:
    """Mean over ``subsets`` random subsets (size m = min(subset_size, N1, N2)) of the unbiased MMD^2
    with kernel k(x, y) = (x.y / D + 1)^3; features (N1, D), (N2, D). About 0 for one distribution."""
    m = min(subset_size, len(features1), len(features2))
    if m < 2:
        raise ValueError(f"KID needs at least 2 feature vectors per set, got {len(features1)} and {len(features2)}")
    rng = np.random.default_rng(seed)
    dim = features1.shape[1]
    estimates = []
    for _ in range(subsets):
        x = features1[rng.choice(len(features1), m, replace=False)].astype(np.float32)  # (m, D)
        y = features2[rng.choice(len(features2), m, replace=False)].astype(np.float32)
        # float32 products (half the time of float64), float64 sums: the kernel values are O(10).
        k_xx, k_yy, k_xy = (_cubed(a @ b.T / dim + 1.0) for a, b in ((x, x), (y, y), (x, y)))  # (m, m) each
        # Unbiased: the diagonals k(x_i, x_i) are left out of the within-set means.
        within = sum(k.sum(dtype=np.float64) - np.trace(k, dtype=np.float64) for k in (k_xx, k_yy)) / (m * (m - 1))
        estimates.append(within - 2.0 * k_xy.mean(dtype=np.float64))
    return float(np.mean(estimates))


def _cubed(t: np.ndarray) -> np.ndarray:
    return t * t * t  # two multiplies; ** 3 goes through pow() and is several times slower


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a (N, D), b (M, D) float32 -> (N, M) squared Euclidean distances, >= 0."""
    d = (a * a).sum(axis=1)[:, None] - 2.0 * (a @ b.T) + (b * b).sum(axis=1)[None, :]
    return np.maximum(d, 0.0)


def knn_radii(features: np.ndarray, k: int = PR_K) -> np.ndarray:
    """features (N, D) -> (N,) squared distance from each point to its k-th nearest other point."""
    if len(features) <= k:
        raise ValueError(f"k-NN radii with k={k} need more than {k} points, got {len(features)}")
    x = features.astype(np.float32)
    radii = np.empty(len(x), np.float32)
    for start in range(0, len(x), _ROWS):
        d = _squared_distances(x[start : start + _ROWS], x)  # (rows, N); each row's own 0 is at index 0
        radii[start : start + _ROWS] = np.partition(d, k, axis=1)[:, k]
    return radii


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = PR_K,
                     real_radii: np.ndarray | None = None) -> tuple[float, float]:
    """Improved precision and recall of ``fake`` (N, D) against ``real`` (M, D) features.

    ``real_radii``: ``knn_radii(real, k)`` when the caller has it already (the same real set scored
    again). One pass over the (N, M) cross distances serves both: a row inside any real ball counts
    for precision, a column inside any fake ball for recall. Both figures depend on the set sizes (a
    larger set makes smaller balls); compare them at equal sizes.
    """
    real, fake = real.astype(np.float32), fake.astype(np.float32)
    real_radii = knn_radii(real, k) if real_radii is None else real_radii
    fake_radii = knn_radii(fake, k)
    fake_in_real = np.zeros(len(fake), bool)
    real_in_fake = np.zeros(len(real), bool)
    for start in range(0, len(fake), _ROWS):
        d = _squared_distances(fake[start : start + _ROWS], real)  # (rows, M)
        fake_in_real[start : start + _ROWS] = (d <= real_radii[None, :]).any(axis=1)
        real_in_fake |= (d <= fake_radii[start : start + _ROWS, None]).any(axis=0)
    return float(fake_in_real.mean()), float(real_in_fake.mean())


def class_histogram(logits: np.ndarray, num_classes: int) -> np.ndarray:
    """logits (N, C) -> float64 (C,) share of images per predicted class (sums to 1)."""
    counts = np.bincount(logits.argmax(axis=1), minlength=num_classes).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def class_kl(histogram: np.ndarray, reference: np.ndarray) -> float:
    """KL(histogram || reference) in nats, both (C,) summing to 1; the reference has no empty class.

    This direction stays finite when the generator drops a class (0 log 0 = 0) and still grows as
    the lost mass piles onto other classes; ``rarest_class_share`` shows the dropped class itself.
    """
    p = histogram[histogram > 0]
    return float(np.sum(p * np.log(p / reference[histogram > 0])))


def conditional_accuracy(logits: np.ndarray, requested_labels: np.ndarray) -> float:
    """Share of images (logits (N, C)) that the classifier puts in the requested class (N,)."""
    return float((logits.argmax(axis=1) == requested_labels).mean())
