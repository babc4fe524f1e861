"""Check that Modal credentials exist before anything is built or uploaded.

Follows the modal client's own rules (modal 1.6, ``modal/config.py`` and ``modal/client.py``):
each setting comes from ``MODAL_<KEY>`` in the environment, else from the active profile of
the config file; a login is either an API token (``token_id`` + ``token_secret``) or an OAuth
grant (``oauth_refresh_token`` + ``oauth_client_id`` + exactly one of ``oauth_client_secret``
and ``oauth_jwt_key``), never both. Only presence is checked: no value is read out or printed.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from visionassist_seg.errors import VasegError

SETUP_HINT = (
    "Run `modal setup` (opens a browser) or `modal token new` to create a token, or set "
    "MODAL_TOKEN_ID and MODAL_TOKEN_SECRET in the environment (an OAuth integration sets "
    "MODAL_OAUTH_REFRESH_TOKEN, MODAL_OAUTH_CLIENT_ID and MODAL_OAUTH_CLIENT_SECRET or MODAL_OAUTH_JWT_KEY)."
)
TOKEN_KEYS = ("token_id", "token_secret")
OAUTH_KEYS = ("oauth_refresh_token", "oauth_client_id", "oauth_client_secret", "oauth_jwt_key")


def modal_config_path() -> Path:
    """Return the Modal config file the client reads: $MODAL_CONFIG_PATH or ~/.modal.toml."""
    return Path(os.environ.get("MODAL_CONFIG_PATH") or Path.home() / ".modal.toml")


def _read_profiles(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        profiles = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    return {name: values for name, values in profiles.items() if isinstance(values, dict)}


def active_profile(profiles: dict[str, Any]) -> str:
    """Return the profile modal uses: $MODAL_PROFILE, else the one marked ``active = true``, else 'default'."""
    if os.environ.get("MODAL_PROFILE"):
        return os.environ["MODAL_PROFILE"]
    return next((name for name, values in profiles.items() if values.get("active") is True), "default")


def configured_keys() -> set[str]:
    """Return the credential settings that are set (environment first, then the active profile)."""
    profiles = _read_profiles(modal_config_path())
    profile = profiles.get(active_profile(profiles), {})
    return {key for key in TOKEN_KEYS + OAUTH_KEYS if os.environ.get(f"MODAL_{key.upper()}") or profile.get(key)}


def credential_problem(keys: set[str]) -> str | None:
    """Return what is wrong with the configured credential settings ``keys``, or None when modal can log in."""
    token = keys & set(TOKEN_KEYS)
    oauth = keys & set(OAUTH_KEYS)
    if token and oauth:
        return "both a Modal token and OAuth credentials are configured, and modal refuses to combine them"
    if oauth:
        secrets = len(oauth & {"oauth_client_secret", "oauth_jwt_key"})
        if {"oauth_refresh_token", "oauth_client_id"} <= oauth and secrets == 1:
            return None
        return (
            "the OAuth credentials are incomplete: modal needs MODAL_OAUTH_REFRESH_TOKEN, MODAL_OAUTH_CLIENT_ID "
            "and exactly one of MODAL_OAUTH_CLIENT_SECRET / MODAL_OAUTH_JWT_KEY"
        )
    if token == set(TOKEN_KEYS):
        return None
    if token:
        return "only one of MODAL_TOKEN_ID / MODAL_TOKEN_SECRET is set"
    profiles = _read_profiles(modal_config_path())
    return (
        f"neither MODAL_TOKEN_ID/MODAL_TOKEN_SECRET, MODAL_OAUTH_* nor a login in profile "
        f"'{active_profile(profiles)}' of {modal_config_path()}"
    )


def has_modal_credentials() -> bool:
    """Return True when modal would find a complete login (token or OAuth) in the environment or config file."""
    return credential_problem(configured_keys()) is None


def check_modal_credentials() -> None:
    """Raise `VasegError` (exit 1) with the setup command when no complete Modal login is configured."""
    problem = credential_problem(configured_keys())
    if problem is not None:
        raise VasegError(f"No usable Modal credentials ({problem}). {SETUP_HINT} Then rerun the command with --remote.")
