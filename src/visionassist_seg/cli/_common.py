"""Options shared by several commands, defined once as `Annotated` aliases."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

ConfigOpt = Annotated[
    Optional[Path],
    typer.Option("--config", help="TOML settings file (default: ./vaseg.toml if present).", show_default=False),
]
RawDirOpt = Annotated[
    Optional[Path], typer.Option("--raw-dir", help="Raw OpenEDS folder. [default: ./openeds_raw]", show_default=False)
]
DatasetDirOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--dataset",
        help="Precomputed dataset folder: the one precompute writes and validate, push, train and evaluate read.",
        show_default=False,
    ),
]


def _check_repo_option(value: Optional[str]) -> Optional[str]:
    """Refuse a malformed --hf-repo while parsing, before the command does any work (exit 2)."""
    if value is not None:
        from visionassist_seg.hub import check_repo_id

        check_repo_id(value)
    return value


RepoOpt = Annotated[
    Optional[str],
    typer.Option(
        "--hf-repo",
        help="Hub dataset repository id. [default: Conner/openeds-precomputed]",
        show_default=False,
        callback=_check_repo_option,
    ),
]
RevisionOpt = Annotated[
    Optional[str], typer.Option("--revision", help="Hub branch, tag or commit.", show_default=False)
]
WorkersOpt = Annotated[
    Optional[int], typer.Option("--workers", min=1, help="Worker processes. [default: all cores]", show_default=False)
]
LimitOpt = Annotated[
    Optional[int],
    typer.Option("--limit", min=1, help="Use at most this many samples of each split of the input.", show_default=False),
]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Random seed (>= 0). [default: 0]", show_default=False)]
SourceOpt = Annotated[
    Optional[str],
    typer.Option(
        "--source",
        help="Raw data source: 'kaggle' (OpenEDS from Kaggle) or 'synthetic' (built-in generator). [default: kaggle]",
        show_default=False,
    ),
]
