"""`resumed_settings`: a resumed run keeps its checkpoint's data and recipe; explicit conflicts are usage errors."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from visionassist_seg.errors import VasegError
from visionassist_seg.settings import load_settings
from visionassist_seg.train.resume import RECIPE_FIELDS, recipe_of, resumed_settings, shard_sizes


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("VASEG_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def checkpoint(tiny_dataset) -> dict:
    """What `train` stores: the recipe of a run at scale 0.1, batch 4, lr 3e-3, seed 5 on tiny_dataset."""
    settings = load_settings(seed=5, dataset={"dir": tiny_dataset}, train={"scale": 0.1, "batch_size": 4, "lr": 3e-3, "patience": 2})
    return {"recipe": recipe_of(settings, tiny_dataset), "settings": settings.masked_dump()}


def test_resume_takes_data_and_recipe_from_the_checkpoint(checkpoint, tiny_dataset):
    settings = resumed_settings(load_settings(workers=3, train={"resume": Path("run/last.pt"), "epochs": 30, "device": "cpu"}), checkpoint)
    assert (settings.train.scale, settings.train.batch_size, settings.train.lr, settings.seed, settings.train.patience) == (0.1, 4, 3e-3, 5, 2)
    assert settings.train.source == "local" and settings.dataset.dir == tiny_dataset.resolve()
    assert (settings.train.epochs, settings.train.device, settings.workers) == (30, "cpu", 3)  # free to change


def test_resume_accepts_explicit_values_equal_to_the_checkpoint(checkpoint, tiny_dataset):
    given = load_settings(seed=5, train={"resume": Path("last.pt"), "scale": 0.1, "batch_size": 4, "lr": 0.003}, dataset={"dir": tiny_dataset})
    assert resumed_settings(given, checkpoint).train.scale == 0.1


def test_resume_accepts_the_same_dataset_copied_elsewhere(checkpoint, tiny_dataset, tmp_path):
    copy = shutil.copytree(tiny_dataset, tmp_path / "moved")
    settings = resumed_settings(load_settings(train={"resume": Path("last.pt"), "source": "local"}, dataset={"dir": copy}), checkpoint)
    assert settings.dataset.dir == copy


@pytest.mark.parametrize(
    "given, option",
    [({"scale": 0.5}, "--scale"), ({"batch_size": 8}, "--batch-size"), ({"lr": 1e-2}, "--lr"),
     ({"limit": 2}, "--limit"), ({"dropout": 0.1}, "[train] dropout"), ({"patience": 5}, "[train] patience")],
)  # fmt: skip
def test_resume_refuses_each_conflicting_recipe_value(checkpoint, given, option):
    with pytest.raises(VasegError) as caught:
        resumed_settings(load_settings(train={"resume": Path("last.pt"), **given}), checkpoint)
    assert caught.value.exit_code == 2 and f"{option} is" in caught.value.message


def test_resume_refuses_another_seed(checkpoint):
    with pytest.raises(VasegError) as caught:
        resumed_settings(load_settings(seed=0, train={"resume": Path("last.pt")}), checkpoint)
    assert caught.value.exit_code == 2 and "--seed is 0" in caught.value.message


def test_resume_refuses_a_conflict_from_the_settings_file(checkpoint, tmp_path):
    (tmp_path / "vaseg.toml").write_text("[train]\nscale = 0.5\n")
    with pytest.raises(VasegError, match="--scale is 0.5 but the checkpoint was trained with 0.1"):
        resumed_settings(load_settings(train={"resume": Path("last.pt")}), checkpoint)


def test_resume_refuses_another_dataset_or_the_hub(checkpoint, tmp_path):
    other = tmp_path / "other"
    (other / "data").mkdir(parents=True)
    (other / "data" / "train-00000-of-00001.parquet").write_bytes(b"x")
    with pytest.raises(VasegError, match="--dataset is "):
        resumed_settings(load_settings(train={"resume": Path("last.pt"), "source": "local"}, dataset={"dir": other}), checkpoint)
    with pytest.raises(VasegError, match="--hf-repo"):
        resumed_settings(load_settings(train={"resume": Path("last.pt"), "source": "hub"}, hub={"repo": "a/b"}), checkpoint)


def test_resume_of_a_hub_run_stays_on_its_repository_and_revision():
    settings = load_settings(hub={"repo": "me/eyes", "revision": "v2"}, train={"source": "hub"})
    checkpoint = {"recipe": recipe_of(settings, Path("/cache/whatever"))}
    resumed = resumed_settings(load_settings(train={"resume": Path("last.pt")}), checkpoint)
    assert (resumed.train.source, resumed.hub.repo, resumed.hub.revision) == ("hub", "me/eyes", "v2")
    with pytest.raises(VasegError, match="me/eyes at v2"):
        resumed_settings(load_settings(train={"resume": Path("last.pt"), "source": "hub"}, hub={"repo": "me/eyes", "revision": "v3"}), checkpoint)


def test_resume_of_an_older_checkpoint_uses_its_settings_dump(checkpoint, tiny_dataset):
    # Written before the recipe record existed, with earlier builds' flat settings.
    old = {"settings": {"scale": 0.1, "batch_size": 4, "lr": 3e-3, "seed": 5, "patience": 2, "dataset": str(tiny_dataset)}}
    settings = resumed_settings(load_settings(train={"resume": Path("last.pt")}), old)
    assert settings.train.scale == 0.1 and settings.train.batch_size == 4 and settings.dataset.dir == tiny_dataset.resolve()
    with pytest.raises(VasegError, match="--scale"):
        resumed_settings(load_settings(train={"resume": Path("last.pt"), "scale": 0.2}), old)


def test_every_recipe_field_is_a_setting():
    from visionassist_seg.settings import setting_names

    assert {setting for setting, _ in RECIPE_FIELDS.values()} <= set(setting_names())


def test_shard_sizes_lists_every_parquet_file(tiny_dataset, tmp_path):
    sizes = shard_sizes(tiny_dataset)
    assert set(sizes) == {"data/train-00000-of-00001.parquet", "data/validation-00000-of-00001.parquet"}
    assert shard_sizes(tmp_path / "missing") == {}
