"""Which local folder training reads, if any: the ``train.source`` setting resolved against the disk."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from visionassist_seg.data.splits import resolve_local

if TYPE_CHECKING:
    from visionassist_seg.settings import Settings


def local_training_folder(settings: Settings) -> Path | None:
    """Return the local folder training reads per ``settings.train.source``, or None for the Hub dataset.

    'local' is ``dataset.dir`` (`vaseg train --dataset`), 'hub' is ``hub.repo`` (`vaseg
    train --hf-repo`), 'auto' is ``dataset.dir`` if `datasets` finds parquet splits in it
    (any layout it accepts), else ``hub.repo``.
    """
    if settings.train.source == "hub":
        return None
    if settings.train.source == "local":
        return settings.dataset.dir
    return default_local_dataset(settings)


def default_local_dataset(settings: Settings) -> Path | None:
    """Return the configured dataset folder (``dataset.dir``) if it holds parquet splits, else None.

    The default target of `vaseg validate` and of training's 'auto' source: the folder
    `vaseg push` uploads when it has data, else (None) the configured Hub repository.
    """
    folder = settings.dataset.dir
    return folder if folder.is_dir() and resolve_local(folder).files else None
