"""Run vaseg jobs on Modal: ``vaseg train --remote``, ``vaseg precompute --remote`` and ``vaseg fetch``.

Importing this package does not import modal; the Modal objects are built by
`build_app` when a remote command runs.
"""

from visionassist_seg.remote.app import build_app
from visionassist_seg.remote.credentials import check_modal_credentials
from visionassist_seg.remote.dispatch import (
    FetchResult,
    fetch_run,
    precompute_remote,
    settings_payload,
    split_shard_ranges,
    train_remote,
)

__all__ = [
    "FetchResult",
    "build_app",
    "check_modal_credentials",
    "fetch_run",
    "precompute_remote",
    "settings_payload",
    "split_shard_ranges",
    "train_remote",
]
