"""ShallowNet training: model, losses, metrics, augmentation, parquet loader, loop, ONNX export, plots.

Most modules import torch (the `train` extra); import them where training happens, not at
CLI start-up. The numpy ones also serve `vaseg evaluate` of an ONNX model without torch:
`split_index`, `rows`, `augment` (the `Sample` type), `samples` and `scores`; `checkpoint_record`
reads a checkpoint's recipe without torch for `train --remote --resume`.
"""
