"""``python -m onnxgan.train`` (and ``torchrun -m onnxgan.train``) is ``gan-train``."""
from .cli import main

main(prog_name="gan-train")
