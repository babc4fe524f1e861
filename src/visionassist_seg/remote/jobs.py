"""Bodies of the remote functions: the same library calls as the local commands.

Each function takes the settings as JSON (`settings_payload`, secrets left out: they
arrive as Modal secrets in the environment) and the paths in it already point into
the Volume mount. In a Modal container the Volume is reloaded before reading and
committed after writing; run here with ``Function.local(...)`` (tests) the paths are
ordinary local folders and there is no Volume to sync.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from visionassist_seg.errors import VasegError
from visionassist_seg.remote.volume import STATUS_FILE, clear_snapshot, read_snapshot, write_snapshot
from visionassist_seg.settings import Settings


def settings_from_payload(payload: str) -> Settings:
    """Return the `Settings` sent as JSON; the Hub token (``hub.token``) comes from the environment."""
    return Settings(**json.loads(payload))


def _in_container() -> bool:
    import modal

    return not modal.is_local()


def reload_volume(settings: Settings) -> None:
    """See files other containers committed since this container started (no-op outside Modal)."""
    if _in_container():
        import modal

        modal.Volume.from_name(settings.modal.volume).reload()


def commit_volume(settings: Settings) -> None:
    """Make this container's writes visible to other containers and to `vaseg fetch` (no-op outside Modal)."""
    if _in_container():
        import modal

        modal.Volume.from_name(settings.modal.volume).commit()


def write_status(run_dir: Path, status: str, **fields: Any) -> dict[str, Any]:
    """Write ``run_dir/remote.json`` (``status``: running, finished or failed) and return its content."""
    record = {"status": status, "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **fields}
    from visionassist_seg.atomic_write import write_json_atomic

    write_json_atomic(run_dir / STATUS_FILE, record, sort_keys=False)  # "status" stays the first key
    return record


def ensure_hub_dataset(settings: Settings) -> Path:
    """Return the Volume folder holding Hub dataset ``hub.repo`` at ``hub.revision``, downloading it when needed.

    The folder is used as it is when its snapshot record (`read_snapshot`) says it was written by
    ``vaseg precompute --remote`` without a push, or holds the Hub commit the revision points at
    now (one small metadata request). Otherwise the revision is downloaded, and dataset files of
    an older commit are removed. When the Hub cannot be asked (unreachable, or the HF secret
    refused), a complete copy already on the Volume is used, with a warning, instead of failing.
    """
    from visionassist_seg.hub import revision_sha

    dataset_dir = settings.dataset.dir
    snapshot = read_snapshot(dataset_dir)
    if snapshot is not None and snapshot["origin"] == "precompute" and snapshot["sha"] is None:
        print(f"Using the dataset `vaseg precompute --remote` wrote on the Volume at {dataset_dir} (never pushed)")
        return dataset_dir
    try:
        current = revision_sha(settings.hub.repo, settings.hub.revision, token=_hub_token(settings))
    except VasegError as err:
        if snapshot is None:  # nothing complete on the Volume (an interrupted refresh leaves no record)
            raise
        print(f"Warning: could not check {settings.hub.repo} on the Hub, so the copy already on the Volume at "
              f"{dataset_dir} is used. {err.message}")
        return dataset_dir
    if snapshot is not None and snapshot["sha"] == current:
        print(f"Using the dataset cached on the Volume at {dataset_dir} (Hub commit {current[:8]})")
        return dataset_dir
    print(f"Downloading {settings.hub.repo} at commit {current[:8]} into the Volume at {dataset_dir} "
          "(later runs reuse it)")
    refresh_hub_dataset(settings, dataset_dir, current)
    commit_volume(settings)
    return dataset_dir


def refresh_hub_dataset(settings: Settings, dataset_dir: Path, sha: str) -> None:
    """Make ``dataset_dir`` hold exactly the dataset files of Hub commit ``sha`` and record it.

    Files already there and unchanged are not fetched again; dataset files the commit does not
    have (shards of an earlier push with another shard size) are deleted, so training never
    reads two versions at once. The record is written last: an interrupted refresh is redone.
    """
    from visionassist_seg.hub import list_dataset_files, stale_dataset_files

    clear_snapshot(dataset_dir)
    download_hub_dataset(settings, dataset_dir, revision=sha)
    on_hub = list_dataset_files(settings.hub.repo, sha, token=_hub_token(settings))
    for path in stale_dataset_files(dataset_dir, on_hub):
        path.unlink()
    write_snapshot(dataset_dir, "hub", settings.hub.repo, sha)


def _pushed_commit(settings: Settings) -> str:
    """Return the Hub commit the push just made, so remote training reuses the Volume copy without a download.

    The push has succeeded by then; if the Hub cannot be asked, "" (never a commit id) makes the
    next remote training compare with the Hub itself instead of failing this job.
    """
    from visionassist_seg.hub import revision_sha

    try:
        return revision_sha(settings.hub.repo, settings.hub.revision, token=_hub_token(settings))
    except VasegError as err:
        print(f"Warning: pushed, but could not read back the Hub commit ({err.message})")
        return ""


def _hub_token(settings: Settings) -> str | None:
    return settings.hub.token.get_secret_value() if settings.hub.token else None


def download_hub_dataset(settings: Settings, dataset_dir: Path, revision: str | None = None) -> None:
    """Download the shards, manifest and card of Hub dataset ``hf_repo`` into ``dataset_dir``.

    ``revision`` defaults to ``hub.revision``. Unlike `visionassist_seg.hub.download_dataset`'s
    default (the Hub cache), the files land in a plain folder on the Volume, where every later
    container finds them.

    Raises:
        VasegError: the repository or revision does not exist or is not readable with the token
            (the Modal secret named by ``modal.hf_secret`` provides HF_TOKEN).
    """
    from visionassist_seg.hub import download_dataset

    revision = revision or settings.hub.revision
    download_dataset(settings.hub.repo, revision, local_dir=dataset_dir, token=_hub_token(settings))


def _summary(result: Any) -> Any:
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return json.loads(json.dumps(dataclasses.asdict(result), default=str))
    return json.loads(json.dumps(result, default=str))


def train_job(payload: str, dataset_from_hub: bool) -> dict[str, Any]:
    """Train with the sent settings into ``run_dir`` on the Volume; return the final ``remote.json``.

    The run's status file says ``running`` while training, then ``finished`` (with the
    training summary) or ``failed`` (with the error), so `vaseg fetch` can tell a
    detached run's state.
    """
    from visionassist_seg.train.loop import train

    settings = settings_from_payload(payload)
    reload_volume(settings)
    if dataset_from_hub:
        ensure_hub_dataset(settings)
    started = time.time()
    write_status(settings.train.run_dir, "running", gpu=settings.modal.gpu)
    commit_volume(settings)
    try:
        # No live progress bar: container output is a log stream; the per-epoch lines remain.
        result = train(settings, progress=False)
    except BaseException as err:
        write_status(settings.train.run_dir, "failed", gpu=settings.modal.gpu, error=f"{type(err).__name__}: {err}")
        commit_volume(settings)
        raise
    record = write_status(
        settings.train.run_dir, "finished", gpu=settings.modal.gpu, seconds=round(time.time() - started, 1),
        result=_summary(result),
    )
    commit_volume(settings)
    return record


def prepare_job(payload: str, force_download: bool = False) -> list:  # -> list[ShardTask]
    """Download the raw data into the Volume unless already there (or ``force_download``); return the shard plan.

    ``force_download`` replaces what the Volume holds: the way out of a partial archive an
    interrupted download left there, which kagglehub otherwise refuses to overwrite.
    """
    from visionassist_seg.data.precompute import plan_shards
    from visionassist_seg.data.raw import is_complete
    from visionassist_seg.kaggle import ensure_raw

    settings = settings_from_payload(payload)
    reload_volume(settings)
    # The shards are about to change: until finalize records them again, nothing may reuse the folder as a cache.
    clear_snapshot(settings.dataset.dir)
    commit_volume(settings)
    if is_complete(settings.raw.dir) and not force_download:
        print(f"Using the raw data cached on the Volume at {settings.raw.dir}")
    else:
        print(f"Fetching raw data ({settings.raw.source}) into the Volume at {settings.raw.dir} (once)")
        ensure_raw(settings, force=force_download)
        commit_volume(settings)
    return plan_shards(settings)


def write_shards_job(tasks: list, payload: str) -> list:  # list[ShardTask] -> list[ShardResult]
    """Write one container's shards into the Volume, one process per core; return their results.

    ``workers`` in the payload counts containers; inside one, the shards are spread over
    its ``modal.cpu`` cores. A shard already complete on the Volume (an earlier,
    interrupted run) is resumed, not rewritten.
    """
    from visionassist_seg.data.precompute import run_shards

    settings = settings_from_payload(payload)
    reload_volume(settings)
    cores = max(1, int(settings.modal.cpu))
    print(f"Writing {len(tasks)} shards with {min(cores, len(tasks))} processes")
    results = run_shards(tasks, settings.model_copy(update={"workers": cores}))
    commit_volume(settings)
    return results


def finalize_job(payload: str, tasks: list, results: list, push: bool, seconds: float = 0.0) -> Any:
    """Write the dataset card and manifest next to the shards, push to the Hub if ``push``; return the report.

    ``seconds`` is the shard-writing time measured by the caller, recorded in the manifest.
    """
    from visionassist_seg.data.precompute import finalize_dataset
    from visionassist_seg.pipeline.precompute import check_strict

    settings = settings_from_payload(payload)
    reload_volume(settings)
    report = finalize_dataset(settings, tasks, results, seconds)
    commit_volume(settings)
    check_strict(report, settings, where=" on the Modal Volume")
    if push:
        from visionassist_seg.pipeline.push import push_dataset

        # Validate with the container's cores (``workers`` counts containers); no live bar in a log stream.
        cores = max(1, int(settings.modal.cpu))
        url = push_dataset(settings.dataset.dir, settings.model_copy(update={"workers": cores}), progress=False)
        print(f"Pushed to {url}")
        write_snapshot(settings.dataset.dir, "precompute", settings.hub.repo, _pushed_commit(settings))
    else:
        write_snapshot(settings.dataset.dir, "precompute", settings.hub.repo, None)
    commit_volume(settings)
    return report
