"""The Kaggle side: credentials check and the OpenEDS download (through kagglehub)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from visionassist_seg.data.raw import find_data_root, is_complete
from visionassist_seg.errors import VasegError
from visionassist_seg.settings import Settings

CREDENTIAL_HELP = (
    "Provide Kaggle credentials in one of these ways: (1) save the API token from "
    "https://www.kaggle.com/settings to ~/.kaggle/kaggle.json and run `chmod 600 ~/.kaggle/kaggle.json`; "
    "(2) set KAGGLE_USERNAME and KAGGLE_KEY; (3) set KAGGLE_API_TOKEN (or save it to ~/.kaggle/access_token). "
    "Or run `vaseg download --source synthetic` for built-in test data that needs no credentials."
)


def kaggle_json_path() -> Path:
    """Return where kaggle.json is looked for (``$KAGGLE_CONFIG_DIR`` or ``~/.kaggle``)."""
    folder = os.environ.get("KAGGLE_CONFIG_DIR") or os.path.join(os.path.expanduser("~"), ".kaggle")
    return Path(folder) / "kaggle.json"


def permission_warning() -> str | None:
    """Return a warning when kaggle.json can be read by other users, else None."""
    path = kaggle_json_path()
    if path.is_file() and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return f"{path} is readable by other users; run `chmod 600 {path}` to protect your Kaggle key."
    return None


def require_credentials() -> None:
    """Raise a VasegError listing the ways to log in when kagglehub finds no Kaggle credentials."""
    from kagglehub.config import get_kaggle_credentials

    try:
        credentials = get_kaggle_credentials()
    except ValueError as err:  # kagglehub's message names the file, never the key
        raise VasegError(f"Kaggle credentials are unusable: {err}. {CREDENTIAL_HELP}") from None
    if credentials is None:
        raise VasegError(f"No Kaggle credentials found. {CREDENTIAL_HELP}")


def check_dataset_id(dataset: str) -> str:
    """Return ``dataset`` if kagglehub accepts it as a dataset handle (OWNER/NAME[/versions/N]).

    Raises:
        VasegError: (exit 2) not a handle.
    """
    from kagglehub.handle import parse_dataset_handle

    try:
        parse_dataset_handle(dataset)
    except ValueError:
        raise VasegError(
            f"Kaggle dataset id {dataset!r} is not of the form OWNER/NAME (the end of the dataset's page address "
            "https://www.kaggle.com/datasets/OWNER/NAME). Fix `[raw] kaggle_dataset` in vaseg.toml or VASEG_RAW__KAGGLE_DATASET "
            "(OpenEDS is soumicksarker/openeds-dataset).",
            exit_code=2,
        ) from None
    return dataset


def download_openeds(settings: Settings, *, force: bool = False) -> Path:
    """Return the data root of raw OpenEDS in ``settings.raw.dir``, downloading it from Kaggle if needed.

    A complete download is not fetched again unless ``force``. Credentials are checked
    before anything is contacted.
    """
    raw_dir = Path(settings.raw.dir)
    if not force and is_complete(raw_dir):
        return find_data_root(raw_dir)  # type: ignore[return-value]
    check_dataset_id(settings.raw.kaggle_dataset)
    require_credentials()
    import kagglehub
    from kagglehub import exceptions as kaggle_errors

    raw_dir.mkdir(parents=True, exist_ok=True)
    try:
        kagglehub.dataset_download(settings.raw.kaggle_dataset, output_dir=str(raw_dir), force_download=force)
    except (kaggle_errors.UnauthenticatedError, kaggle_errors.CredentialError) as err:
        raise VasegError(f"Kaggle rejected the credentials ({type(err).__name__}). {CREDENTIAL_HELP}") from None
    except kaggle_errors.NotFoundError:
        raise _not_found(settings.raw.kaggle_dataset, "not found") from None
    except Exception as err:
        translated = download_error(err, settings.raw.kaggle_dataset, raw_dir)
        if translated is None:
            raise
        raise translated from None
    root = find_data_root(raw_dir)
    if root is None:
        raise VasegError(
            f"The download of '{settings.raw.kaggle_dataset}' into {raw_dir} holds no train/images folder. "
            "Rerun with `vaseg download --force`, or check the dataset id."
        )
    return root


def download_error(error: BaseException, dataset: str, raw_dir: Path) -> VasegError | None:
    """Return the VasegError for a failed kagglehub download (None when ``error`` is not one we know).

    kagglehub 1.0 raises `KaggleApiHTTPError` for every HTTP error status, so the status
    decides the message: 404 is the dataset id, 401 the credentials, 403 the credentials or
    the dataset's terms. Messages name the dataset and the credential source, never a key.
    """
    import requests
    from kagglehub import exceptions as kaggle_errors

    if isinstance(error, kaggle_errors.KaggleApiHTTPError):
        return _http_error(error.response.status_code if error.response is not None else None, dataset)
    if isinstance(error, (requests.ConnectionError, requests.Timeout)):
        return VasegError(
            f"Could not reach Kaggle to download '{dataset}' ({type(error).__name__}). Check the internet "
            "connection and proxy settings (HTTPS_PROXY), then rerun `vaseg download`."
        )
    if isinstance(error, FileExistsError):
        # kagglehub refuses a non-empty output folder without its completion marker: a partial download.
        return VasegError(
            f"{raw_dir} holds files but no complete download of '{dataset}' (an interrupted download, or "
            "another folder's files). Rerun with `vaseg download --force` (or `vaseg precompute "
            "--force-download`, also with --remote) to replace its contents, or pass another --raw-dir."
        )
    if isinstance(error, (kaggle_errors.BackendError, kaggle_errors.DataCorruptionError, OSError)):
        return VasegError(
            f"Downloading '{dataset}' into {raw_dir} failed: {error}. Check your network and disk space, "
            "then rerun `vaseg download` (add --force if the folder holds a broken download)."
        )
    return None


def _http_error(status: int | None, dataset: str) -> VasegError:
    page = f"https://www.kaggle.com/datasets/{dataset}"
    if status == 404:
        return _not_found(dataset, "not found (HTTP 404)")
    if status == 401:
        return VasegError(
            f"Kaggle rejected the credentials (HTTP 401) from {credential_source()} when downloading "
            f"'{dataset}': the key is wrong, expired or revoked. {CREDENTIAL_HELP}"
        )
    if status == 403:
        return VasegError(
            f"Kaggle refused access (HTTP 403) to '{dataset}' with the credentials from {credential_source()}. "
            f"If the dataset asks you to accept its terms or rules, open {page} logged in as that Kaggle user "
            f"and accept them; otherwise the key lacks permission: create a new one. {CREDENTIAL_HELP}"
        )
    return VasegError(
        f"Kaggle answered HTTP {status} when downloading '{dataset}'. Kaggle may be having trouble: "
        "retry later, or check https://www.kaggle.com for status notices."
    )


def _not_found(dataset: str, what: str) -> VasegError:
    return VasegError(
        f"Kaggle dataset '{dataset}' was {what}. Check the id: it is the owner/name part of the dataset's "
        f"page address (https://www.kaggle.com/datasets/OWNER/NAME); set it with `[raw] kaggle_dataset` in "
        "vaseg.toml or VASEG_RAW__KAGGLE_DATASET (OpenEDS is soumicksarker/openeds-dataset)."
    )


def credential_source() -> str:
    """Return where kagglehub takes the Kaggle credentials from, in words (never their values).

    Follows kagglehub's order: an access token (``KAGGLE_API_TOKEN`` or ``~/.kaggle/access_token``)
    first, then ``KAGGLE_USERNAME``/``KAGGLE_KEY``, then kaggle.json.
    """
    if os.environ.get("KAGGLE_API_TOKEN"):
        return "KAGGLE_API_TOKEN"
    token_file = Path(os.path.expanduser("~")) / ".kaggle" / "access_token"
    if token_file.is_file() or token_file.with_suffix(".txt").is_file():
        return str(token_file)
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return "KAGGLE_USERNAME/KAGGLE_KEY"
    return str(kaggle_json_path())


def ensure_raw(settings: Settings, *, force: bool = False) -> Path:
    """Return the raw data root for ``settings.raw.source`` (kaggle or synthetic), creating it if needed."""
    if settings.raw.source == "synthetic":
        from visionassist_seg.data.synthetic import write_synthetic_raw

        if force or not is_complete(settings.raw.dir):
            return write_synthetic_raw(settings.raw.dir, settings.raw.synthetic_count, settings.seed)
        return find_data_root(settings.raw.dir)  # type: ignore[return-value]
    return download_openeds(settings, force=force)
