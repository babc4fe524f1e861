"""Everything that talks to the Hugging Face Hub: publishing and fetching precomputed datasets.

The token comes from the settings (``VASEG_HF_TOKEN``/``HF_TOKEN``) or the saved
``hf auth login``; it is passed to the client and never printed, logged or written.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from visionassist_seg.data.schema import CARD, DATA_DIR, MANIFEST
from visionassist_seg.data.splits import CARD_FILES, resolve_listing
from visionassist_seg.errors import VasegError
from visionassist_seg.settings import Settings

# vaseg's private state in a dataset folder: the resume state, the run lock and the
# temporaries of its atomic writes (``.NAME.PID.tmp``). Everything else is published as it is.
PRIVATE_PATTERNS = [".vaseg/*", ".vaseg.lock", ".*.tmp", "*/.*.tmp"]
# The dataset's own files on the Hub, in any layout `datasets` reads: a remote file matching
# these and absent locally is deleted by a push (patterns are fnmatch: ``*`` crosses ``/``).
# ``.gitattributes`` and files outside these (a user's notes, another tool's folder) are kept.
DATASET_FILE_PATTERNS = [f"{DATA_DIR}/*", "*.parquet", MANIFEST]
TOKEN_HELP = (
    "Create a token with write access at https://huggingface.co/settings/tokens, then set HF_TOKEN "
    "(or VASEG_HF_TOKEN) or run `hf auth login`."
)


def check_repo_id(repo_id: str, option: str = "--hf-repo") -> str:
    """Return ``repo_id`` if the Hub accepts it as a repository id (huggingface_hub's own rule).

    Raises:
        VasegError: (exit 2) not an id, e.g. spaces, '!', three parts or over 96 characters.
    """
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise VasegError(
            f"{option} {repo_id!r} is not a Hugging Face repository id ({err}). Pass OWNER/NAME using "
            "letters, digits, '-', '_' and '.', e.g. yourname/openeds-precomputed (set `[hub] repo` in "
            "vaseg.toml or VASEG_HUB__REPO for the default).",
            exit_code=2,
        ) from None
    return repo_id


def resolve_token(settings: Settings) -> str:
    """Return the Hub token from the settings, ``HF_TOKEN`` or the saved login.

    Raises:
        VasegError: no token anywhere.
    """
    if settings.hub.token is not None and settings.hub.token.get_secret_value():
        return settings.hub.token.get_secret_value()
    import huggingface_hub

    token = huggingface_hub.get_token()
    if not token:
        raise VasegError(f"No Hugging Face token found: pushing needs one. {TOKEN_HELP}")
    return token


def dataset_url(repo_id: str, revision: str | None = None, endpoint: str = "https://huggingface.co") -> str:
    """Return the browser URL of a Hub dataset (of one branch when ``revision`` is given)."""
    url = f"{endpoint.rstrip('/')}/datasets/{repo_id}"
    return f"{url}/tree/{revision}" if revision else url


def check_push_target(dataset_dir: Path, settings: Settings) -> str:
    """Return the token to push with, after checking the repository id and that ``dataset_dir`` looks like a dataset.

    Cheap checks only (no scan), meant to run before anything slow.

    Raises:
        VasegError: a bad repository id (exit 2), not a precomputed dataset folder, or no token.
    """
    check_repo_id(settings.hub.repo)
    _require_dataset_folder(Path(dataset_dir))
    return resolve_token(settings)


def upload_dataset(dataset_dir: Path, settings: Settings, *, token: str, message: str | None = None) -> str:
    """Return the Hub URL of ``dataset_dir`` after uploading it so that the Hub copy equals the folder.

    Checking the dataset first is the caller's (`pipeline.push.push_dataset`). Creates the
    dataset repository (and the ``settings.hub.revision`` branch) if needed, then uploads the
    folder as it is (card, data files in whatever layout, manifest), leaving out only
    vaseg's private state (`PRIVATE_PATTERNS`), with `HfApi.upload_folder`. Dataset files
    on the Hub that are no longer in the folder (`DATASET_FILE_PATTERNS`: shards of an
    earlier run with another shard size, a stale manifest) are deleted in the first commit
    of the upload; large folders are committed in several parts, and a rerun after an
    interruption skips what is already there (hf_xet).

    Raises:
        VasegError: the token is rejected (401), no write access (403), or the Hub cannot be reached.
    """
    dataset_dir = Path(dataset_dir)
    repo_id, revision = check_repo_id(settings.hub.repo), settings.hub.revision
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    with _hub_errors(repo_id, "push to"):
        api.create_repo(repo_id, repo_type="dataset", private=settings.hub.private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
        api.upload_folder(
            repo_id=repo_id,
            folder_path=dataset_dir,
            repo_type="dataset",
            revision=revision,
            ignore_patterns=PRIVATE_PATTERNS,
            delete_patterns=DATASET_FILE_PATTERNS,
            commit_message=message or f"Upload precomputed OpenEDS dataset from {dataset_dir.name}",
        )
    return dataset_url(repo_id, revision, api.endpoint)


def _require_dataset_folder(dataset_dir: Path) -> None:
    """Raise a VasegError when ``dataset_dir`` has no dataset card or no parquet file (a quick look, no scan)."""
    data_files = (p for p in dataset_dir.rglob("*.parquet") if ".vaseg" not in p.relative_to(dataset_dir).parts)
    if not (dataset_dir / CARD).is_file() or next(data_files, None) is None:
        raise VasegError(
            f"{dataset_dir} is not a precomputed dataset (needs parquet files, e.g. {DATA_DIR}/*.parquet, "
            f"and {CARD}). Run `vaseg precompute --no-push --dataset DIR` first and push DIR."
        )


def revision_sha(repo_id: str, revision: str | None = None, *, token: str | None = None) -> str:
    """Return the commit id that ``revision`` (default: the main branch) of dataset ``repo_id`` points at.

    One small metadata request; ``token`` overrides the one from ``HF_TOKEN`` or the saved login.

    Raises:
        VasegError: the repository or revision does not exist or is not accessible, the token is
            rejected, or the Hub cannot be reached.
    """
    from huggingface_hub import HfApi

    with _hub_errors(repo_id, "read"):
        return HfApi(token=token).dataset_info(repo_id, revision=revision).sha


def list_dataset_files(repo_id: str, revision: str | None = None, *, token: str | None = None) -> list[str]:
    """Return the paths of every file in dataset ``repo_id`` at ``revision``.

    Raises:
        VasegError: as `revision_sha`.
    """
    from huggingface_hub import HfApi

    with _hub_errors(repo_id, "read"):
        return HfApi(token=token).list_repo_files(repo_id, repo_type="dataset", revision=revision)


def stale_dataset_files(folder: Path, keep: Iterable[str]) -> list[Path]:
    """Return the dataset files (`DATASET_FILE_PATTERNS`) in ``folder`` whose relative paths are not in ``keep``.

    vaseg's private state (`PRIVATE_PATTERNS`) is never listed.
    """
    from huggingface_hub.utils import filter_repo_objects

    folder = Path(folder)
    local = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    dataset = filter_repo_objects(local, allow_patterns=DATASET_FILE_PATTERNS, ignore_patterns=PRIVATE_PATTERNS)
    wanted = set(keep)
    return [folder / path for path in dataset if path not in wanted]


def download_dataset(
    repo_id: str, revision: str | None = None, *, local_dir: Path | None = None, token: str | None = None
) -> Path:
    """Return the local folder holding the dataset's resolved split files, card and manifest.

    The splits are resolved on the repository's file list the way `datasets.load_dataset`
    resolves them (the card's ``configs:``, else its default patterns; `data.splits`), and
    only their files are downloaded, with ``README.md``, ``.huggingface.yaml`` and
    ``manifest.json`` where the repository has them. The revision is resolved to one
    commit first, so a push in between cannot mix two versions. Offline, the cached copy
    of that commit is used. The files land in the Hub cache, or in the plain folder
    ``local_dir`` when given. ``token`` overrides the one from ``HF_TOKEN`` or the saved login.

    Raises:
        VasegError: the repository or revision does not exist or is not accessible, the
            token is rejected, the Hub cannot be reached (and nothing is cached), or the
            card's configs are invalid.
    """
    from huggingface_hub import HfApi

    options = {name: value for name, value in {"local_dir": local_dir, "token": token}.items() if value is not None}
    api = HfApi(token=token)
    with _hub_errors(repo_id, "download"):
        commit = api.resolve_revision(repo_id, repo_type="dataset", revision=revision)
        try:
            listing = api.list_repo_files(repo_id, repo_type="dataset", revision=commit.resolved)
        except Exception as error:
            cached = _cached_snapshot(repo_id, commit, options) if _unreachable(error) else None
            if cached is None:
                raise
            return cached
        folder = _download_splits(repo_id, commit, listing, options)
    return Path(folder if local_dir is None else local_dir)


def _download_splits(repo_id: str, commit, listing: list[str], options: dict) -> Path:
    """Download the card files, resolve the splits against ``listing``, then download their files; return the folder."""
    from huggingface_hub import snapshot_download

    fetch = {"repo_type": "dataset", "revision": commit, **options}
    metadata = [name for name in (*CARD_FILES, MANIFEST) if name in listing]
    texts: dict[str, str] = {}
    if metadata:
        folder = Path(snapshot_download(repo_id, allow_patterns=metadata, **fetch))
        texts = {name: (folder / name).read_text(encoding="utf-8") for name in CARD_FILES if name in metadata}
    found = resolve_listing(listing, texts, f"hf://datasets/{repo_id}")
    return Path(snapshot_download(repo_id, allow_patterns=[*metadata, *found.names()], **fetch))


def _unreachable(error: BaseException) -> bool:
    """Return True for offline mode and connection failures (not for answers such as 401 or 404)."""
    from huggingface_hub import errors

    if isinstance(error, errors.HfHubHTTPError):
        return False
    return isinstance(error, (errors.OfflineModeIsEnabled, errors.HTTPError, ConnectionError, TimeoutError))


def _cached_snapshot(repo_id: str, commit, options: dict) -> Path | None:
    """Return the copy of ``commit`` a previous download left in the cache (or ``local_dir``), or None."""
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(repo_id, repo_type="dataset", revision=commit, local_files_only=True, **options)
    except (OSError, ValueError):  # LocalEntryNotFoundError and IncompleteSnapshotError are OSErrors
        return None
    return Path(options.get("local_dir") or folder)


@contextmanager
def _hub_errors(repo_id: str, action: str) -> Iterator[None]:
    """Turn Hub client errors raised inside the block into VasegErrors that name the fix.

    Messages carry the repository, the status and the server's short message; never the
    token, the request headers or the full exception text. Other errors pass unchanged.
    """
    try:
        yield
    except VasegError:
        raise
    except Exception as error:
        translated = hub_error(error, repo_id, action)
        if translated is None:
            raise
        raise translated from None


def hub_error(error: BaseException, repo_id: str, action: str) -> VasegError | None:
    """Return the VasegError for a Hub client error (None when ``error`` is not one).

    The upload pipeline wraps failures (``RuntimeError("Error while uploading ...")``), so
    the exception's cause chain is searched for the first error we know.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        translated = _translate(current, repo_id, action)
        if translated is not None:
            return translated
        current = current.__cause__ or current.__context__
    return None


def _translate(error: BaseException, repo_id: str, action: str) -> VasegError | None:
    from huggingface_hub import errors

    where = f"dataset repository {repo_id}"
    if isinstance(error, errors.HFValidationError):  # a bad id from a settings file reached the client
        return VasegError(
            f"{repo_id!r} is not a Hugging Face repository id ({error}). Set --hf-repo (or `[hub] repo` in "
            "vaseg.toml, VASEG_HUB__REPO) to OWNER/NAME using letters, digits, '-', '_' and '.'.",
            exit_code=2,
        )
    if isinstance(error, errors.RevisionNotFoundError):
        return VasegError(f"Revision not found in {where}. Pass an existing branch, tag or commit to --revision.")
    if isinstance(error, errors.GatedRepoError):
        return VasegError(f"{where} is gated: accept its conditions on the Hub page with your account, then retry.")
    if isinstance(error, errors.RepositoryNotFoundError):
        return VasegError(
            f"Cannot {action} {where}: it does not exist or your token cannot see it. Check --hf-repo "
            f"(owner/name); for a private repository {TOKEN_HELP.lower()}"
        )
    if isinstance(error, errors.HfHubHTTPError):
        return _http_error(error, where, action)
    if isinstance(error, ValueError) and str(error).startswith("Invalid metadata in README.md"):
        # upload_folder's check of the card's YAML header (the Hub's /api/validate-yaml said 400).
        details = " ".join(line.strip("- ") for line in str(error).splitlines()[1:] if line.strip())
        return VasegError(
            f"The Hub refused the YAML header of the dataset card {CARD} when trying to {action} {where}"
            f"{': ' + details if details else ''}. Fix the header, or rerun `vaseg precompute` to rewrite the "
            "card, then push again."
        )
    if type(error).__name__ == "XetAuthenticationError":  # hf_xet's PermissionError: storage refused the token
        return VasegError(f"The Hub storage rejected the token when trying to {action} {where}. {TOKEN_HELP}")
    # errors.HTTPError is the HTTP client's base error: connection, timeout and protocol failures.
    network = (errors.HTTPError, errors.OfflineModeIsEnabled, errors.LocalEntryNotFoundError, ConnectionError, TimeoutError)
    if isinstance(error, network):
        resume = ": an interrupted upload resumes and sends only what is missing" if action.startswith("push") else ""
        return VasegError(
            f"Network failure: could not {action} {where} ({type(error).__name__}). Check the internet "
            f"connection, proxy and HF_ENDPOINT (and that HF_HUB_OFFLINE is not set), then rerun{resume}."
        )
    return None


def _http_error(error, where: str, action: str) -> VasegError:  # error: HfHubHTTPError
    status = error.response.status_code if error.response is not None else None
    server = f" The Hub said: {error.server_message.strip()}" if error.server_message else ""
    if status == 401:
        return VasegError(f"The Hub rejected the token (401) when trying to {action} {where}.{server} {TOKEN_HELP}")
    if status == 403:
        return VasegError(
            f"No write access (403) to {where}.{server} Use a token with write permission for that "
            "namespace (fine-grained tokens need 'write' on the repository or organisation), or pass "
            "--hf-repo YOUR_NAME/DATASET to publish under your own account."
        )
    resume = " (rerunning a push resumes it)" if action.startswith("push") else ""
    return VasegError(
        f"The Hub answered HTTP {status} when trying to {action} {where}.{server} Check --hf-repo and "
        f"--revision, then retry later{resume}."
    )
