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


def download_openeds(settings: Settings, *, force: bool = False) -> Path:
    """Return the data root of raw OpenEDS in ``settings.raw_dir``, downloading it from Kaggle if needed.

    A complete download is not fetched again unless ``force``. Credentials are checked
    before anything is contacted.
    """
    raw_dir = Path(settings.raw_dir)
    if not force and is_complete(raw_dir):
        return find_data_root(raw_dir)  # type: ignore[return-value]
    require_credentials()
    import kagglehub
    from kagglehub import exceptions as kaggle_errors

    raw_dir.mkdir(parents=True, exist_ok=True)
    try:
        kagglehub.dataset_download(settings.kaggle_dataset, output_dir=str(raw_dir), force_download=force)
    except (kaggle_errors.UnauthenticatedError, kaggle_errors.CredentialError) as err:
        raise VasegError(f"Kaggle rejected the credentials ({type(err).__name__}). {CREDENTIAL_HELP}") from None
    except kaggle_errors.NotFoundError:
        raise VasegError(
            f"Kaggle dataset '{settings.kaggle_dataset}' was not found. Check kaggle_dataset in vaseg.toml / "
            "VASEG_KAGGLE_DATASET (expected owner/name, e.g. soumicksarker/openeds-dataset)."
        ) from None
    except (kaggle_errors.KaggleApiHTTPError, kaggle_errors.BackendError, OSError) as err:
        raise VasegError(
            f"Downloading '{settings.kaggle_dataset}' into {raw_dir} failed: {err}. Check your network and "
            "disk space, then rerun `vaseg download` (add --force if the folder holds a broken download)."
        ) from None
    root = find_data_root(raw_dir)
    if root is None:
        raise VasegError(
            f"The download of '{settings.kaggle_dataset}' into {raw_dir} holds no train/images folder. "
            "Rerun with `vaseg download --force`, or check the dataset id."
        )
    return root


def ensure_raw(settings: Settings, *, force: bool = False) -> Path:
    """Return the raw data root for ``settings.source`` (kaggle or synthetic), creating it if needed."""
    if settings.source == "synthetic":
        from visionassist_seg.data.synthetic import write_synthetic_raw

        if force or not is_complete(settings.raw_dir):
            return write_synthetic_raw(settings.raw_dir, settings.synthetic_count, settings.seed)
        return find_data_root(settings.raw_dir)  # type: ignore[return-value]
    return download_openeds(settings, force=force)
