"""One Sampler shared by 16 threads x 1000 calls (batches of 1, 3 and 64) gives exactly the single-thread
results, on both backends.

(The C ABI's counterpart is cpp/tests/threads_test.c, ctest ``threads``.)
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

from kit import TINY_MODEL
from onnxgan.runtime.sampler import Sampler

THREADS, CALLS, REQUESTS = 16, 1000, 24  # REQUESTS distinct (n, seed) pairs, n in 1, 3, 64


@pytest.mark.parametrize("backend", ["onnxruntime", "native"])
def test_sampler_under_16_threads_equals_one_thread(backend):
    sampler = Sampler(TINY_MODEL, backend=backend, device="cpu", threads=1)
    latents = [sampler.latent((1, 3, 64)[r % 3], seed=r * 7919) for r in range(REQUESTS)]  # (n, latent_dim) each
    expected = [sampler.generate(z) for z in latents]  # float32 (n, C, H, W), one thread
    start = threading.Barrier(THREADS)  # all threads begin together, so that their calls overlap
    failures: list[str] = []

    def worker(t: int) -> None:
        start.wait()
        for i in range(CALLS):
            r = (t * 31 + i) % REQUESTS
            try:
                images = sampler.generate(latents[r])
            except Exception as e:  # noqa: BLE001 -- reported below with the thread and call
                failures.append(f"thread {t} call {i}: {type(e).__name__}: {e}")
                continue
            if not np.array_equal(images, expected[r]):
                failures.append(f"thread {t} call {i}: request {r} (n={len(latents[r])}) differs")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, f"{len(failures)} of {THREADS * CALLS} calls failed; first: {failures[:3]}"
