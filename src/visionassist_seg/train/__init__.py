"""ShallowNet training: model, losses, metrics, augmentation, parquet loader, loop, ONNX export, plots.

Modules import torch; import them where training happens, not at CLI start-up.
"""
