"""Suite-wide isolation: a private Hugging Face cache per test session.

`datasets.load_dataset(local_dir)` caches by the folder's name, not its content: a
second dataset in another folder with the same name would be served from the first
one's cache. Tests must never see each other's (or the user's) cached data.
"""

from __future__ import annotations

import os
import tempfile

_HF_HOME = tempfile.mkdtemp(prefix="vaseg-tests-hf-")
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_DATASETS_CACHE"] = os.path.join(_HF_HOME, "datasets")
os.environ["HF_HUB_OFFLINE"] = "1"  # nothing in the suite may reach the network
os.environ.pop("HF_TOKEN", None)
