"""The `train` extra: torch and matplotlib, which only local training, export and `.pt` models need.

A core install (`pip install visionassist-seg`) downloads, preprocesses, validates, pushes,
trains and precomputes on Modal, and predicts and evaluates with ONNX models on
onnxruntime. A command that needs the extra calls `require_train_extra` first, so a
missing torch is one paragraph saying how to install it, not an ImportError.
"""

from __future__ import annotations

import importlib

from visionassist_seg.errors import VasegError

INSTALL_HINT = (
    "Install it with `pip install 'visionassist-seg[train]'` (or `pip install -e '.[train]'` in the source tree). "
    "On a machine without a CUDA GPU run `pip install torch --index-url https://download.pytorch.org/whl/cpu` "
    "first: that CPU build keeps the install small, where a plain torch requirement pulls the multi-GB CUDA build."
)


def require_train_extra(what: str, modules: tuple[str, ...] = ("torch",)) -> None:
    """Raise the install paragraph if one of ``modules`` cannot be imported; ``what`` names what needs them.

    Raises:
        VasegError: a module of the `train` extra is not installed.
    """
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise VasegError(
            f"{what} needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed: "
            f"{'it is' if len(missing) == 1 else 'they are'} in vaseg's `train` extra. {INSTALL_HINT}"
        )
