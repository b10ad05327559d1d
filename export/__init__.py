"""Checkpoint -> self-describing model.onnx, checked against PyTorch (``gan-export``)."""
