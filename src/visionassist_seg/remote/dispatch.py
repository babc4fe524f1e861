"""The local side of ``--remote``: stage inputs on the Volume, run the Modal functions, copy results back."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, Sequence

from visionassist_seg.console import console, err_console
from visionassist_seg.errors import VasegError
from visionassist_seg.remote.connection import check_modal_reachable, modal_server_url, unreachable_error
from visionassist_seg.remote.credentials import SETUP_HINT, check_modal_credentials
from visionassist_seg.remote.volume import (
    STATUS_FILE,
    check_run_name,
    download_dir,
    existing_volume,
    hub_dataset_key,
    local_dataset_key,
    mounted,
    raw_key,
    read_json,
    run_key,
    upload_dir,
    upload_file,
    upload_key,
)
from visionassist_seg.settings import Settings


@dataclass(frozen=True)
class StagedInputs:
    """Settings overrides that point training at its inputs on the Volume."""

    overrides: dict[str, Any]
    dataset_from_hub: bool


@dataclass(frozen=True)
class FetchResult:
    """A run copied from the Volume: where it went, the files, and its ``remote.json`` (None if absent)."""

    run_dir: Path
    files: list[Path]
    status: dict[str, Any] | None


def settings_payload(settings: Settings, **changes: Any) -> str:
    """Return the settings as JSON for a remote function, secrets left out, with ``changes`` applied.

    ``changes`` are top-level fields or sections given as dicts (``train={"source": "local"}``).
    ``PurePosixPath`` values (Volume paths) are written as POSIX strings whatever the local OS.
    """
    data = json.loads(settings.without_secrets_json())
    for name, value in changes.items():
        if name not in Settings.model_fields:
            raise ValueError(f"unknown settings field {name!r}")
        if isinstance(value, dict):
            unknown = set(value) - set(data[name])
            if unknown:
                raise ValueError(f"unknown {name} settings {sorted(unknown)}")
            data[name] = {**data[name], **{key: _json_path(item) for key, item in value.items()}}
        else:
            data[name] = _json_path(value)
    return json.dumps(data)


def _json_path(value: Any) -> Any:
    return value.as_posix() if isinstance(value, PurePosixPath) else value


def split_shard_ranges(n_shards: int, n_workers: int) -> list[range]:
    """Return up to ``n_workers`` contiguous, disjoint, non-empty ranges covering ``range(n_shards)``.

    Sizes differ by at most one, so containers get equal work.
    """
    if n_shards < 0 or n_workers < 1:
        raise ValueError(f"need n_shards >= 0 and n_workers >= 1, got {n_shards} and {n_workers}")
    groups = min(n_shards, n_workers)
    ranges = []
    start = 0
    for group in range(groups):
        size = n_shards // groups + (1 if group < n_shards % groups else 0)
        ranges.append(range(start, start + size))
        start += size
    return ranges


def shard_groups(tasks: Sequence[Any], n_workers: int) -> list[list[Any]]:
    """Return ``tasks`` split into per-container lists following `split_shard_ranges`."""
    return [[tasks[index] for index in indices] for indices in split_shard_ranges(len(tasks), n_workers)]


def require_modal() -> None:
    """Raise `VasegError` unless a Modal login is configured and the Modal server answers (in seconds, not a minute)."""
    check_modal_credentials()
    check_modal_reachable()


@contextmanager
def _modal_errors() -> Iterator[None]:
    """Turn Modal's authentication, not-found and connection errors into `VasegError`s with the fix."""
    from modal.exception import AuthError, ConnectionError, NotFoundError

    try:
        yield
    except AuthError:
        raise VasegError(f"Modal rejected the configured credentials. {SETUP_HINT}") from None
    except NotFoundError as err:
        raise VasegError(
            f"Modal could not find {err}. Secrets are looked up by the names in the settings "
            "(`[modal] hf_secret`, `[modal] kaggle_secret`, `[modal] mlflow_secret`): create them with "
            "`modal secret create NAME KEY=VALUE ...` or point the settings at existing ones."
        ) from None
    except ConnectionError:
        # The connection dropped after the up-front check passed; the client has retried for a minute.
        raise unreachable_error(modal_server_url(), "the connection failed and the client gave up retrying") from None


def stage_training_inputs(volume, settings: Settings, name: str) -> StagedInputs:
    """Upload what training needs from this machine and return the settings overrides for the container.

    A local dataset folder (see `data.training_folder.local_training_folder`) is uploaded under ``datasets/local/``
    unless the Volume already holds the same manifest; otherwise the container reads the Hub
    dataset ``hf_repo`` cached on the Volume (downloaded once, or written there by
    ``vaseg precompute --remote``). A ``--resume`` checkpoint is uploaded under ``uploads/NAME/``.
    """
    from visionassist_seg.data.schema import MANIFEST
    from visionassist_seg.data.splits import resolve_local
    from visionassist_seg.data.training_folder import local_training_folder

    # The container always reads a folder on the Volume, whatever the local choice was.
    overrides: dict[str, Any] = {"train": {"run_dir": mounted(run_key(name)), "source": "local"}}
    dataset = local_training_folder(settings)
    if dataset is not None:
        if not dataset.is_dir() or not resolve_local(dataset).files:  # any layout datasets.load_dataset reads
            raise VasegError(
                f"Dataset folder {dataset} has no parquet shards (no split `datasets` can find). Pass the output "
                "folder of `vaseg precompute` to --dataset, or train on the Hub dataset "
                f"{settings.hub.repo} (cached on the Modal Volume) with --hf-repo (or `[train] source = \"hub\"`)."
            )
        key = local_dataset_key(dataset)
        local_manifest = dataset / MANIFEST
        remote_manifest = read_json(volume, f"{key}/{MANIFEST}")
        if not local_manifest.is_file() or remote_manifest != json.loads(local_manifest.read_text("utf-8")):
            err_console.print(f"Uploading {dataset} to Modal Volume {settings.modal.volume} at {key}")
            upload_dir(volume, dataset, key)
        overrides["dataset"] = {"dir": mounted(key)}
        from_hub = False
    else:
        from visionassist_seg.hub import check_repo_id

        check_repo_id(settings.hub.repo, "[hub] repo")  # it names the Volume folder as well as the Hub repository
        overrides["dataset"] = {"dir": mounted(hub_dataset_key(settings))}
        from_hub = True
    for field, option, fix in (
        ("resume", "--resume", "Pass an existing last.pt."),
        ("init_from", "--init-from", "Check the path."),
    ):
        path = getattr(settings.train, field)
        if path is None:
            continue
        if not path.is_file():
            raise VasegError(f"{path} ({option}) does not exist. {fix}")
        key = upload_key(name, path.name)
        upload_file(volume, path, key)
        overrides["train"][field] = mounted(key)
    if "workers" not in settings.model_fields_set:
        # The default counts this machine's cores; the container's loader has modal.cpu of them.
        overrides["workers"] = max(1, int(settings.modal.cpu))
    if not settings.train.device.startswith("cuda"):
        # The local device (cpu, mps) names this machine; the container has the requested GPU.
        overrides["train"]["device"] = "cuda"
    return StagedInputs(overrides, from_hub)


def train_remote(settings: Settings, *, detach: bool = False) -> Path | str:
    """Train on Modal; return the local run folder, or the run name with ``detach``.

    Logs stream to this terminal. The run stays on the Volume under ``runs/NAME``
    (NAME = the last part of ``run_dir``) and, unless detached, is copied into ``run_dir``.

    Raises:
        VasegError: no Modal credentials or Modal unreachable (checked before anything is built),
            a bad run name or dataset folder, or Modal rejecting the credentials or secret names.
    """
    require_modal()
    name = check_run_name(settings.train.run_dir.name)
    import modal

    from visionassist_seg.remote.app import build_app

    with _modal_errors():
        remote = build_app(settings, command="train")
        staged = stage_training_inputs(remote.volume, settings, name)
        payload = settings_payload(settings, **staged.overrides)
        train_function = remote.functions["train"]
        with modal.enable_output(), remote.app.run(detach=detach):
            if detach:
                call = train_function.spawn(payload, staged.dataset_from_hub)
                _print_detached(settings, name, call.object_id)
                return name
            train_function.remote(payload, staged.dataset_from_hub)
        files = download_dir(remote.volume, run_key(name), settings.train.run_dir)
    err_console.print(
        f"Copied {len(files)} files of run {name} from Modal Volume {settings.modal.volume} into {settings.train.run_dir}"
    )
    return settings.train.run_dir


def _print_detached(settings: Settings, name: str, call_id: str) -> None:
    console.print(
        f"Started remote run {name} on Modal (GPU {settings.modal.gpu}, app {settings.modal.app_name}, "
        f"call {call_id}). It keeps running after this command returns; its results go to Modal Volume "
        f"{settings.modal.volume} under {run_key(name)}.",
        highlight=False,
    )
    console.print(
        f"When it has finished, copy it here with:\n  vaseg fetch {name} --output-dir {settings.train.run_dir}",
        highlight=False,
    )


def precompute_remote(settings: Settings, *, push: bool = True, force_download: bool = False) -> Any:
    """Download, precompute and (with ``push``) publish the dataset inside Modal; return the PrecomputeReport.

    The raw data goes to the Volume under ``raw/...`` (downloaded once; again with
    ``force_download``, which replaces a partial download left there), shards are written
    by ``workers`` CPU containers in parallel, and the finished dataset stays on the Volume
    under ``datasets/hub/REPO/REVISION`` where ``vaseg train --remote`` finds it.

    Raises:
        VasegError: no Modal credentials, Modal unreachable, or Modal rejecting the credentials or
            secret names.
    """
    from visionassist_seg.hub import check_repo_id

    check_repo_id(settings.hub.repo, "[hub] repo")  # it names the Volume folder as well as the Hub repository
    require_modal()
    import modal

    from visionassist_seg.remote.app import build_app

    output_key = hub_dataset_key(settings)
    payload = settings_payload(settings, raw={"dir": mounted(raw_key(settings))}, dataset={"dir": mounted(output_key)})
    with _modal_errors():
        remote = build_app(settings, command="precompute", push=push)
        prepare, write_shards, finalize = (remote.functions[job] for job in ("prepare", "write_shards", "finalize"))
        with modal.enable_output(), remote.app.run():
            tasks = prepare.remote(payload, force_download)
            groups = shard_groups(tasks, settings.workers)
            err_console.print(f"Writing {len(tasks)} shards in {len(groups)} Modal containers")
            started = time.perf_counter()
            results = [result for group in write_shards.map(groups, kwargs={"payload": payload}) for result in group]
            report = finalize.remote(payload, tasks, results, push, time.perf_counter() - started)
    err_console.print(
        f"Dataset kept on Modal Volume {settings.modal.volume} at {output_key}; "
        "`vaseg train --remote` uses it without downloading."
    )
    return report


def fetch_run(settings: Settings, name: str, destination: Path | None = None) -> FetchResult:
    """Copy run ``name`` from the Volume into ``destination`` (default: next to ``run_dir``, named NAME).

    Raises:
        VasegError: no Modal credentials, Modal unreachable, a bad name, no such Volume, or no such
            run on the Volume.
    """
    check_run_name(name)
    require_modal()
    target = destination if destination is not None else settings.train.run_dir.parent / name
    with _modal_errors():
        volume = existing_volume(settings.modal.volume)
        status = read_json(volume, f"{run_key(name)}/{STATUS_FILE}")
        files = download_dir(volume, run_key(name), target)
    if not files:
        raise VasegError(
            f"No run {name!r} on Modal Volume {settings.modal.volume} (nothing under {run_key(name)}). "
            f"List the runs with `modal volume ls {settings.modal.volume} runs`, and check --config / "
            "VASEG_MODAL__VOLUME if the run used another Volume."
        )
    return FetchResult(target, files, status)
