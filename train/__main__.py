"""``python -m onnxgan.train`` (and ``torchrun -m onnxgan.train``) is ``gan-train``, through the same launcher
(onnxgan.launch: Ctrl-C and SIGTERM while torch imports, one line naming the extra when torch is missing)."""
from onnxgan.launch import gan_train

gan_train()
