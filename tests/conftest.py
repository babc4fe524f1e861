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


import pytest  # noqa: E402  (after the environment is set: imports below may read it)


@pytest.fixture(scope="session")
def cli_dataset(tmp_path_factory) -> dict:
    """Raw synthetic files and the dataset `vaseg precompute --no-push` makes from them (read-only: copy to edit).

    Returns {"raw": raw folder, "dataset": dataset folder}, made through the CLI.
    """
    from pathlib import Path

    from typer.testing import CliRunner

    from visionassist_seg.cli.app import app

    runner = CliRunner()
    root = Path(tmp_path_factory.mktemp("cli-dataset"))
    raw, out = root / "raw", root / "out"
    result = runner.invoke(app, ["download", "--source", "synthetic", "--count", "4", "--raw-dir", str(raw)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        ["precompute", "--no-push", "--skip-download", "--raw-dir", str(raw), "--output-dir", str(out), "--workers", "1"],
    )
    assert result.exit_code == 0, result.output
    return {"raw": raw, "dataset": out}
