"""Which settings a resumed training run takes from its checkpoint, and the conflicts that are usage errors.

A run's data, model and recipe settings (the dataset it reads, its resolution, sample
limit, batch size, learning rate, dropout, plateau patience and seed) shape every epoch:
resuming with other values would continue one run with a different one and mix both in
one metrics.csv. So a resumed run takes them from the checkpoint, and a value given
explicitly (command line, ``VASEG_*`` variable or settings file) that differs from the
checkpoint's is refused, naming the option. Everything else may change between the
parts of a run: ``epochs`` (to extend it), ``device``, ``amp``, ``compile`` (the hardware
it continues on), ``workers`` and progress output.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from visionassist_seg.errors import VasegError
from visionassist_seg.settings import Settings

# The checkpoint's recipe key -> (the setting, the name a user knows it by: the train option, or the
# settings key where there is no option). The keys are the checkpoint format's and stay as they are.
RECIPE_FIELDS = {
    "scale": ("train.scale", "--scale"),
    "train_limit": ("train.limit", "--limit"),
    "batch_size": ("train.batch_size", "--batch-size"),
    "lr": ("train.lr", "--lr"),
    "dropout": ("train.dropout", "[train] dropout"),
    "patience": ("train.patience", "[train] patience"),
    "seed": ("seed", "--seed"),
}


def recipe_of(settings: Settings, dataset_dir: Path) -> dict[str, Any]:
    """Return the data and recipe record a checkpoint keeps so that a resumed run can continue it exactly.

    ``dataset_dir`` is the folder the run reads, recorded with its shard names and sizes
    so that the same dataset copied elsewhere (a moved folder, the Modal Volume) is
    recognised; for a Hub dataset the repository and revision are recorded instead.
    """
    from visionassist_seg.data.training_folder import local_training_folder

    if local_training_folder(settings) is None:
        data: dict[str, Any] = {"source": "hub", "hf_repo": settings.hub.repo, "hf_revision": settings.hub.revision}
    else:
        data = {"source": "local", "dataset": str(Path(dataset_dir).resolve()), "shards": shard_sizes(dataset_dir)}
    return {**data, **{key: _value(settings, setting) for key, (setting, _) in RECIPE_FIELDS.items()}}


def resumed_settings(settings: Settings, checkpoint: dict[str, Any]) -> Settings:
    """Return ``settings`` with the checkpoint's data and recipe settings in place of today's.

    Raises:
        VasegError: (exit 2) an explicitly given setting differs from the checkpoint's.
    """
    recorded = checkpoint.get("recipe") or _recipe_from_old_checkpoint(checkpoint.get("settings") or {})
    conflicts = [*_data_conflicts(settings, recorded), *_recipe_conflicts(settings, recorded)]
    if conflicts:
        raise VasegError(
            f"--resume {settings.train.resume} continues a run, and {'; '.join(conflicts)}. A resumed run keeps the "
            "data, model and recipe settings of its checkpoint, so that one metrics.csv describes one run: "
            "drop the option (or the VASEG_* variable or settings-file entry that sets it), or start a new "
            "run in another --output-dir without --resume.",
            exit_code=2,
        )
    update: dict[str, Any] = {}
    for key, (setting, _) in RECIPE_FIELDS.items():
        if key in recorded:
            section, _, name = setting.rpartition(".")
            if section:
                update.setdefault(section, {})[name] = recorded[key]
            else:
                update[name] = recorded[key]
    for section, values in _data_update(settings, recorded).items():
        update.setdefault(section, {}).update(values)
    return settings.updated(**update)


def _data_update(settings: Settings, recorded: dict[str, Any]) -> dict[str, Any]:
    """Return the settings that point the resumed run at the recorded dataset.

    Nothing when the user named the dataset: it was checked to be the recorded one, perhaps
    at another path (a moved folder, a copy on the Modal Volume), and that path is kept.
    """
    if _asked_source(settings) is not None:
        return {}
    if recorded.get("source") == "local":
        return {"dataset": {"dir": Path(recorded["dataset"])}, "train": {"source": "local"}}
    if recorded.get("source") == "hub":
        return {"hub": {"repo": recorded["hf_repo"], "revision": recorded["hf_revision"]}, "train": {"source": "hub"}}
    return {}


def _recipe_conflicts(settings: Settings, recorded: dict[str, Any]) -> list[str]:
    conflicts = []
    for key, (setting, option) in RECIPE_FIELDS.items():
        given = _value(settings, setting)
        if _explicit(settings, setting) and key in recorded and not _same(given, recorded[key]):
            conflicts.append(f"{option} is {given} but the checkpoint was trained with {recorded[key]}")
    return conflicts


def _owner(settings: Settings, setting: str) -> tuple[Any, str]:
    """Return the model holding a dotted setting (``train.lr``: the train section; ``seed``: the settings) and its name."""
    section, _, name = setting.rpartition(".")
    return (getattr(settings, section) if section else settings), name


def _value(settings: Settings, setting: str) -> Any:
    owner, name = _owner(settings, setting)
    return getattr(owner, name)


def _explicit(settings: Settings, setting: str) -> bool:
    """Return True when the dotted setting was given (option, variable or settings file), not defaulted."""
    owner, name = _owner(settings, setting)
    return name in owner.model_fields_set


def _data_conflicts(settings: Settings, recorded: dict[str, Any]) -> list[str]:
    """Return a description of each way the explicitly asked-for dataset differs from the recorded one."""
    asked = _asked_source(settings)
    if asked is None or recorded.get("source") is None:
        return []
    if asked == "local":
        folder = Path(settings.dataset.dir).resolve()
        if recorded["source"] == "local" and _same_dataset(folder, recorded):
            return []
        was = recorded.get("dataset") if recorded["source"] == "local" else _hub_name(recorded["hf_repo"], recorded["hf_revision"])
        return [f"--dataset is {folder} but the checkpoint was trained on {was}"]
    if recorded["source"] == "hub" and settings.hub.repo == recorded["hf_repo"] and _revision_agrees(settings, recorded):
        return []
    was = recorded.get("dataset") if recorded["source"] == "local" else _hub_name(recorded["hf_repo"], recorded["hf_revision"])
    asked_for = _hub_name(settings.hub.repo, settings.hub.revision)
    return [f"--hf-repo/--revision ask for {asked_for} but the checkpoint was trained on {was}"]


def _hub_name(repo: str, revision: str | None) -> str:
    return f"Hub dataset {repo} at {revision or 'its default branch'}"


def _same_dataset(folder: Path, recorded: dict[str, Any]) -> bool:
    """Return True when ``folder`` is the recorded dataset: the same path, or the same shard names and sizes."""
    if Path(recorded["dataset"]) == folder:
        return True
    return bool(recorded.get("shards")) and shard_sizes(folder) == recorded["shards"]


def shard_sizes(folder: Path) -> dict[str, int]:
    """Return ``{path relative to folder: bytes}`` of every parquet file under ``folder`` (empty if none)."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {path.relative_to(folder).as_posix(): path.stat().st_size for path in sorted(folder.rglob("*.parquet"))}


def _asked_source(settings: Settings) -> str | None:
    """Return 'local' or 'hub' when the user named the data source explicitly, None when it was left to default."""
    if _explicit(settings, "train.source") and settings.train.source in ("local", "hub"):
        return settings.train.source
    return None


def _revision_agrees(settings: Settings, recorded: dict[str, Any]) -> bool:
    return not _explicit(settings, "hub.revision") or settings.hub.revision == recorded["hf_revision"]


def _same(given: Any, recorded: Any) -> bool:
    if isinstance(given, float) and isinstance(recorded, (int, float)):
        return math.isclose(given, recorded, rel_tol=1e-12, abs_tol=0.0)
    return given == recorded


def _recipe_from_old_checkpoint(dumped: dict[str, Any]) -> dict[str, Any]:
    """Return the recipe of a checkpoint written before the recipe record (its settings dump holds the fields).

    Those checkpoints did not record the resolved dataset folder, so the data source is
    pinned only when the run named a dataset folder explicitly.
    """
    recipe: dict[str, Any] = {name: dumped[name] for name in RECIPE_FIELDS if name in dumped}
    if dumped.get("dataset"):
        recipe.update(source="local", dataset=str(Path(dumped["dataset"]).resolve()))
    elif dumped.get("train_source") == "hub":
        recipe.update(source="hub", hf_repo=dumped.get("hf_repo"), hf_revision=dumped.get("hf_revision"))
    return recipe
