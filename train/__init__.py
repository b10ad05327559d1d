"""Training: data, models, the loop, checkpoints and the ``gan-train`` command (PyTorch)."""
