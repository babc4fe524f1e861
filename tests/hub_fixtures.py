"""A fake Hub for download tests: the client replaced at its boundary, one repository served from a folder.

`HfApi.resolve_revision` and `HfApi.list_repo_files` answer from a local folder standing for the
repository, and `snapshot_download` copies the files its ``allow_patterns`` select (with
huggingface_hub's own `filter_repo_objects`, as the real one does).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub import ResolvedRevision
from huggingface_hub.utils import filter_repo_objects
from layout_fixtures import eye_rows, write_layout

COMMIT = "0123456789abcdef0123456789abcdef01234567"
# Files a repository may hold besides its splits; none of them may be downloaded.
EXTRA = {"raw/images/000000.png": b"png", "notes/train_log.txt": b"log", ".gitattributes": b"*.parquet lfs"}


def repository(root: Path, layout: str) -> Path:
    """Return a folder standing for a Hub dataset repository in ``layout``, with unrelated files beside it."""
    rows = {"train": eye_rows(6, 0, "train", legacy=layout == "seed"), "validation": eye_rows(2, 0, "validation")}
    if layout == "seed":
        rows["validation"] = eye_rows(2, 0, "validation", legacy=True)
    write_layout(root, layout, rows)
    extra = dict(EXTRA)
    if layout == "configs":  # default patterns would find this file; the card's configs must win
        extra["data/train-00000-of-00001.parquet"] = b"stale"
    for name, data in extra.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


class FakeHub:
    """A Hub serving one repository from a local folder; records what was asked for."""

    def __init__(self, repo: Path, cache: Path) -> None:
        self.repo, self.cache = repo, cache
        self.downloads: list[dict] = []
        self.listing_error: Exception | None = None

    def files(self) -> list[str]:
        return sorted(p.relative_to(self.repo).as_posix() for p in self.repo.rglob("*") if p.is_file())

    def resolve_revision(self, repo_id, *, repo_type=None, revision=None, **kwargs):
        assert repo_type == "dataset"
        return ResolvedRevision(COMMIT, revision, repo_id, repo_type)

    def list_repo_files(self, repo_id, *, revision=None, repo_type=None, **kwargs):
        assert repo_type == "dataset" and revision == COMMIT
        if self.listing_error is not None:
            raise self.listing_error
        return self.files()

    def snapshot_download(self, repo_id, *, repo_type, revision, allow_patterns=None, local_files_only=False, **kw):
        self.downloads.append({"revision": revision, "allow_patterns": allow_patterns, "offline": local_files_only, **kw})
        target = Path(kw.get("local_dir") or self.cache / "snapshots" / revision.resolved)
        if local_files_only:
            if not target.is_dir():
                raise huggingface_hub.errors.LocalEntryNotFoundError("not cached")
            return str(target)
        for name in filter_repo_objects(self.files(), allow_patterns=allow_patterns):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.repo / name, target / name)
        return str(target)


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """Install a FakeHub; call it with a layout to fill its repository."""

    def install(layout: str) -> FakeHub:
        fake = FakeHub(repository(tmp_path / "repo", layout), tmp_path / "cache")
        monkeypatch.setattr(huggingface_hub.HfApi, "resolve_revision", lambda self, *a, **k: fake.resolve_revision(*a, **k))
        monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", lambda self, *a, **k: fake.list_repo_files(*a, **k))
        monkeypatch.setattr(huggingface_hub, "snapshot_download", fake.snapshot_download)
        return fake

    return install
