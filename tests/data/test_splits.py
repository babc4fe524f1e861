"""data.splits: the splits `datasets.load_dataset` sees, for a folder and for a file listing alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from visionassist_seg.data.splits import (
    SplitFiles,
    has_shard_counts,
    incomplete_shard_sets,
    resolve_listing,
    resolve_local,
)
from visionassist_seg.errors import VasegError

CONFIGS_CARD = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: frames/fit/*.parquet
  - split: validation
    path: frames/holdout/*.parquet
---
# eyes
"""
DATA_DIR_CARD = """---
configs:
- config_name: main
  data_dir: v2
---
"""
# Trees of (path -> text); parquet files are empty: resolution looks at names only.
TREES = {
    "seed": ["data/train/shard_00000.parquet", "data/train/shard_00001.parquet", "data/validation/shard_00000.parquet"],
    "vaseg": [
        "data/train-00000-of-00002.parquet",
        "data/train-00001-of-00002.parquet",
        "data/validation-00000-of-00001.parquet",
        "manifest.json",
    ],
    "flat": ["train.parquet", "validation-0.parquet", "validation-1.parquet", "notes.txt"],
    "configs": ["frames/fit/a.parquet", "frames/fit/b.parquet", "frames/holdout/c.parquet", "data/train-00000-of-00001.parquet"],
    "data_dir": ["v2/train/a.parquet", "v2/val/b.parquet", "data/train/old.parquet"],
}
CARDS = {"configs": CONFIGS_CARD, "data_dir": DATA_DIR_CARD}
EXPECTED = {
    "seed": {"train": TREES["seed"][:2], "validation": TREES["seed"][2:]},
    "vaseg": {"train": TREES["vaseg"][:2], "validation": TREES["vaseg"][2:3]},
    "flat": {"train": ["train.parquet"], "validation": ["validation-0.parquet", "validation-1.parquet"]},
    "configs": {"train": TREES["configs"][:2], "validation": TREES["configs"][2:3]},
    "data_dir": {"train": ["v2/train/a.parquet"], "validation": ["v2/val/b.parquet"]},
}


def write_tree(root: Path, name: str) -> Path:
    for relative in [*TREES[name], ".cache/huggingface/data/train/hidden.parquet"]:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(b"")
    if name in CARDS:
        (root / "README.md").write_text(CARDS[name], encoding="utf-8")
    return root


def as_lists(found: SplitFiles) -> dict[str, list[str]]:
    return {split: list(names) for split, names in found.files.items()}


@pytest.mark.parametrize("name", sorted(TREES))
def test_a_folder_resolves_to_the_expected_splits(tmp_path, name):
    assert as_lists(resolve_local(write_tree(tmp_path, name))) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(TREES))
def test_resolution_agrees_with_load_dataset_builder(tmp_path, name):
    import datasets

    root = write_tree(tmp_path, name)
    builder = datasets.load_dataset_builder(str(root))
    expected = {
        str(split): [Path(f).relative_to(root.resolve()).as_posix() for f in files if f.endswith(".parquet")]
        for split, files in builder.config.data_files.items()
    }
    assert as_lists(resolve_local(root)) == expected


@pytest.mark.parametrize("name", sorted(TREES))
def test_a_listing_resolves_like_the_folder(tmp_path, name):
    root = write_tree(tmp_path, name)
    listing = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    cards = {"README.md": CARDS[name]} if name in CARDS else {}
    found = resolve_listing(listing, cards, "hf://datasets/someone/eyes")
    assert as_lists(found) == EXPECTED[name] and found.root == Path(".")
    assert found.source == resolve_local(root).source


def test_the_listing_leaves_nothing_in_the_memory_filesystem():
    import fsspec

    before = set(fsspec.filesystem("memory").store)
    resolve_listing(TREES["vaseg"], {}, "x")
    assert set(fsspec.filesystem("memory").store) == before


def test_the_source_says_where_the_patterns_came_from(tmp_path):
    assert resolve_local(write_tree(tmp_path / "a", "configs")).source == "the card's configs (config 'default')"
    assert resolve_local(write_tree(tmp_path / "b", "seed")).source == "datasets' default split patterns"
    assert resolve_local(tmp_path / "empty").files == {}


def test_standalone_yaml_overrides_the_card(tmp_path):
    root = write_tree(tmp_path, "configs")
    (root / ".huggingface.yaml").write_text(
        "configs:\n- config_name: default\n  data_files:\n  - split: train\n    path: frames/holdout/*.parquet\n"
    )
    assert as_lists(resolve_local(root)) == {"train": ["frames/holdout/c.parquet"]}


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ("---\nconfigs: [\n---\n", "is not valid YAML"),
        ("---\nconfigs:\n- config_name: a\n  data_files: x.parquet\n- config_name: b\n  data_files: y.parquet\n---\n",
         "several configs (a, b) and none is the default"),
        ("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: gone.parquet\n---\n",
         "name a data file that does not exist"),
    ],
)
def test_a_bad_card_is_one_error_naming_it(tmp_path, card, message):
    (tmp_path / "README.md").write_text(card)
    with pytest.raises(VasegError) as caught:
        resolve_local(tmp_path)
    assert message in caught.value.message and str(tmp_path / "README.md") in caught.value.message


def _found(*names: str, split: str = "train") -> SplitFiles:
    return SplitFiles(Path("."), {split: names}, "test")


@pytest.mark.parametrize(
    ("names", "problems"),
    [
        (("data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"), []),
        (("data/train/shard_00000.parquet", "data/train/shard_00002.parquet"), []),  # no counts: nothing to check
        (
            ("data/train-00000-of-00003.parquet", "data/train-00002-of-00003.parquet"),
            ["split 'train' is incomplete: 1 of 3 shards missing (data/train-00001-of-00003.parquet)"],
        ),
        (
            ("data/train-00000-of-00001.parquet", "data/train-00000-of-00002.parquet"),
            ["split 'train': the shards data/train-*.parquet disagree on the shard count (-of-00001, 00002): files of "
             "two different runs are mixed; remove the stale ones or rerun `vaseg precompute`"],
        ),
        (
            ("data/train-00000-of-00001.parquet", "data/train-00003-of-00001.parquet"),
            ["split 'train': shard index(es) [3] of data/train-*.parquet exceed the count 1"],
        ),
        # Two sharded sets in one split (a card may combine them) are checked separately.
        (("a/x-00000-of-00001.parquet", "b/y-00000-of-00001.parquet"), []),
    ],
)
def test_incomplete_shard_sets(names, problems):
    assert incomplete_shard_sets(_found(*names)) == problems


def test_many_missing_shards_are_counted_and_the_first_named():
    [problem] = incomplete_shard_sets(_found("data/train-00000-of-00009.parquet"))
    assert problem.startswith("split 'train' is incomplete: 8 of 9 shards missing (data/train-00001-of-00009.parquet")
    assert problem.endswith("and 3 more)")


def test_has_shard_counts():
    assert has_shard_counts(_found("data/train-00000-of-00001.parquet"))
    assert not has_shard_counts(_found("data/train/shard_00000.parquet"))


@pytest.mark.parametrize(
    "configs",
    ["- just a string", "5", "- config_name: default\n  data_files: 7"],
)
def test_a_malformed_configs_field_is_one_short_paragraph(configs):
    with pytest.raises(VasegError) as caught:
        resolve_listing(["a.parquet"], {"README.md": f"---\nconfigs:\n{configs}\n---\n"}, "hf://datasets/a/b")
    message = caught.value.message
    assert "hf://datasets/a/b/README.md" in message and "\n" not in message and len(message) < 600
