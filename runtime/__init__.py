"""Sampling from model.onnx with numpy + onnxruntime or the native kernel; never imports torch."""
