"""Check that Modal credentials exist before anything is built or uploaded."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from visionassist_seg.errors import VasegError

SETUP_HINT = (
    "Run `modal setup` (opens a browser) or `modal token new` to create a token, or set "
    "MODAL_TOKEN_ID and MODAL_TOKEN_SECRET in the environment."
)


def modal_config_path() -> Path:
    """Return the Modal config file the client reads: $MODAL_CONFIG_PATH or ~/.modal.toml."""
    return Path(os.environ.get("MODAL_CONFIG_PATH") or Path.home() / ".modal.toml")


def has_modal_credentials() -> bool:
    """Return True when a Modal token is in the environment or in the Modal config file."""
    if os.environ.get("MODAL_TOKEN_ID") and os.environ.get("MODAL_TOKEN_SECRET"):
        return True
    path = modal_config_path()
    if not path.is_file():
        return False
    try:
        profiles = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return any(
        isinstance(profile, dict) and profile.get("token_id") and profile.get("token_secret")
        for profile in profiles.values()
    )


def check_modal_credentials() -> None:
    """Raise `VasegError` (exit 1) with the setup command when no Modal token is configured.

    Only checks presence; the token's values are never read out or printed.
    """
    if has_modal_credentials():
        return
    partial = bool(os.environ.get("MODAL_TOKEN_ID")) != bool(os.environ.get("MODAL_TOKEN_SECRET"))
    found = (
        "only one of MODAL_TOKEN_ID / MODAL_TOKEN_SECRET is set"
        if partial
        else f"neither MODAL_TOKEN_ID/MODAL_TOKEN_SECRET nor a token in {modal_config_path()}"
    )
    raise VasegError(f"No Modal credentials found ({found}). {SETUP_HINT} Then rerun the command with --remote.")
