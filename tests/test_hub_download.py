"""hub.download_dataset resolves the splits on the repository's file list and downloads only their files.

The Hub client is replaced at its boundary by `hub_fixtures.FakeHub`.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import httpx2
import huggingface_hub
import pytest
from hub_fixtures import COMMIT, hub  # noqa: F401  (hub is a fixture)
from layout_fixtures import relative_files

from visionassist_seg.errors import VasegError
from visionassist_seg.hub import download_dataset


def downloaded(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("layout", ["seed", "vaseg", "configs"])
def test_only_the_resolved_split_files_and_the_card_are_downloaded(hub, layout):
    fake = hub(layout)
    folder = download_dataset("someone/eyes", "v1")
    splits = {name for split, count in (("train", 2), ("validation", 1)) for name in relative_files(layout, split, count)}
    card = set() if layout == "seed" else {"README.md"}
    assert downloaded(folder) == splits | card
    assert all(call["revision"].resolved == COMMIT for call in fake.downloads)  # one commit throughout


def test_local_dir_and_token_reach_every_download(hub, tmp_path):
    fake = hub("vaseg")
    folder = download_dataset("someone/eyes", local_dir=tmp_path / "volume", token="hf_x")
    assert folder == tmp_path / "volume" and "data/train-00001-of-00002.parquet" in downloaded(folder)
    assert all(call["local_dir"] == tmp_path / "volume" and call["token"] == "hf_x" for call in fake.downloads)


def test_manifest_comes_along_when_the_repository_has_one(hub):
    fake = hub("vaseg")
    (fake.repo / "manifest.json").write_text("{}")
    assert "manifest.json" in downloaded(download_dataset("someone/eyes"))


def test_offline_the_cached_copy_of_the_commit_is_used(hub):
    fake = hub("vaseg")
    first = download_dataset("someone/eyes")
    fake.listing_error = httpx2.ConnectError("[Errno 101] Network is unreachable")
    assert download_dataset("someone/eyes") == first
    assert fake.downloads[-1]["offline"] is True


def test_offline_without_a_cached_copy_is_a_network_failure(hub):
    fake = hub("vaseg")
    fake.listing_error = httpx2.ConnectError("[Errno 101] Network is unreachable")
    with pytest.raises(VasegError, match="Network failure"):
        download_dataset("someone/eyes")


def test_a_card_naming_a_missing_file_is_an_error_naming_the_card(hub):
    fake = hub("configs")
    card = fake.repo / "README.md"
    card.write_text(card.read_text().replace("frames/fit/*.parquet", "frames/fit/part7.parquet"))
    with pytest.raises(VasegError) as caught:
        download_dataset("someone/eyes")
    message = caught.value.message
    assert "hf://datasets/someone/eyes/README.md" in message and "part7.parquet" in message
    assert "memory://" not in message


def test_listing_error_that_is_an_answer_is_not_hidden_by_the_cache(hub):
    fake = hub("vaseg")
    download_dataset("someone/eyes")
    response = httpx2.Response(401, request=httpx2.Request("GET", "https://huggingface.co/api/datasets/someone/eyes"))
    fake.listing_error = huggingface_hub.errors.HfHubHTTPError("401 Unauthorized", response=response)
    with pytest.raises(VasegError, match="rejected the token"):
        download_dataset("someone/eyes")


def test_validate_cli_on_the_seed_layout_on_the_hub_exits_0_as_legacy(hub):
    from typer.testing import CliRunner

    from visionassist_seg.cli.app import app

    hub("seed")
    with mock.patch.dict("os.environ", {"VASEG_HF_REPO": "someone/eyes"}):
        result = CliRunner().invoke(app, ["validate", "--workers", "1"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "legacy" in text and "hf://datasets/someone/eyes" in text
