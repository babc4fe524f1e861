"""The one `Settings` object shared by every vaseg command.

Precedence, highest first: command-line options > ``VASEG_*`` environment variables >
``vaseg.toml`` in the working directory (or ``--config FILE``) > the defaults below.
"""

from __future__ import annotations

import difflib
import os
import re
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from visionassist_seg.errors import VasegError

DEFAULT_CONFIG_FILE = Path("vaseg.toml")
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:[0-9]+)?")
# Every name under which the Hub token could be given (field and aliases), lower-cased.
_TOKEN_KEYS = frozenset({"hf_token", "vaseg_hf_token"})
# An unknown key whose name looks like one of these may hold a credential someone misspelled.
_CREDENTIAL_WORDS = ("token", "key", "kee", "secret", "pass", "credential", "kaggle", "hf_", "huggingface")
TOKEN_HELP = "the Hub token belongs in the HF_TOKEN (or VASEG_HF_TOKEN) environment variable or in `hf auth login`"
_config_file: ContextVar[Path | None] = ContextVar("vaseg_config_file", default=None)


def _default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


class Settings(BaseSettings):
    """Every knob of vaseg; each command reads the fields it needs."""

    model_config = SettingsConfigDict(
        env_prefix="VASEG_",
        extra="forbid",
        validate_default=True,
        populate_by_name=True,
    )

    # --- raw data -------------------------------------------------------------
    source: Literal["kaggle", "synthetic"] = Field(
        "kaggle", description="Where `download` gets raw data: the Kaggle dataset or the built-in synthetic generator."
    )
    kaggle_dataset: str = Field(
        "soumicksarker/openeds-dataset", description="Kaggle dataset handle (owner/name) of raw OpenEDS."
    )
    raw_dir: Path = Field(Path("openeds_raw"), description="Folder holding (or receiving) the raw OpenEDS tree.")
    synthetic_count: int = Field(
        64, ge=1, description="Synthetic source: number of train samples (validation and test get a quarter each)."
    )
    seed: int = Field(0, ge=0, description="Seed for synthetic data, sampling, augmentation and training (>= 0).")

    # --- precompute -----------------------------------------------------------
    output_dir: Path = Field(
        Path("precompute_output"), description="Precomputed dataset folder precompute writes (--dataset); validate, push and training read "
        "it unless `dataset` is set."
    )
    workers: int = Field(
        default_factory=_default_workers, ge=1, description="Worker processes (Modal containers with --remote)."
    )
    limit: int | None = Field(None, ge=1, description="Precompute: use at most this many samples of each split (--limit).")
    shard_size: int = Field(256, ge=1, description="Raw samples per parquet shard (bounds peak memory).")
    row_group_size: int = Field(16, ge=1, description="Rows per parquet row group (bounds writer memory).")
    compression_level: int = Field(2, ge=1, le=22, description="zstd level for the distance-map column (most of the bytes; 2 is the size/speed knee).")
    strict: bool = Field(False, description="Exit 1 if any sample is skipped as bad input.")

    # --- Hugging Face Hub -----------------------------------------------------
    hf_repo: str = Field("Conner/openeds-precomputed", description="Hub dataset repository id (owner/name).")
    hf_revision: str | None = Field(None, description="Hub branch, tag or commit to read or push to.")
    hf_private: bool = Field(False, description="Create the Hub repository as private.")
    hf_token: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("VASEG_HF_TOKEN", "HF_TOKEN", "hf_token"),
        description="Hub token; defaults to HF_TOKEN or the saved `hf auth login` token. Never printed.",
    )

    # --- training -------------------------------------------------------------
    dataset: Path | None = Field(
        None, description="Dataset folder validate, push and training read (--dataset); defaults to output_dir."
    )
    run_dir: Path = Field(Path("runs/shallownet"), description="Training run folder (checkpoints, metrics, ONNX).")
    epochs: int = Field(15, ge=1, description="Training epochs.")
    batch_size: int = Field(32, ge=1, description="Training batch size.")
    lr: float = Field(1e-3, gt=0, allow_inf_nan=False, description="Adam learning rate (finite, > 0).")
    device: str = Field("auto", description="Torch device: auto, cpu, cuda, cuda:N or mps.")
    scale: float = Field(
        1.0, gt=0, le=1, allow_inf_nan=False, description="Train at this fraction of 400x640 (0 < scale <= 1)."
    )
    train_limit: int | None = Field(None, ge=1, description="Training: use at most this many samples of each split (--limit).")
    resume: Path | None = Field(None, description="Checkpoint (last.pt) to resume training from.")
    init_from: Path | None = Field(
        None,
        description="Start training from these weights (a vaseg best.pt/last.pt, a saved state dict in the "
        "reference's key names, or the reference's ONNX export) with a fresh optimiser at epoch 0.",
    )
    amp: bool = Field(True, description="Mixed precision on CUDA (ignored on CPU).")
    compile: bool = Field(False, description="torch.compile the model (needs a C++ compiler on CPU).")
    dropout: float = Field(
        0.2, ge=0, lt=1, allow_inf_nan=False, description="Dropout probability of all 19 dropout layers (as the reference trains)."
    )
    patience: int = Field(5, ge=1, description="ReduceLROnPlateau patience in epochs.")
    train_source: Literal["auto", "local", "hub"] = Field(
        "auto",
        description="Where training reads data: 'local' (dataset folder), 'hub' (hf_repo via the Hub cache), "
        "'auto' (dataset if set, else output_dir if it holds shards, else hf_repo).",
    )

    # --- Modal ----------------------------------------------------------------
    modal_app_name: str = Field("vaseg", description="Modal app name.")
    modal_volume: str = Field("vaseg-data", description="Modal Volume for dataset cache and run outputs.")
    gpu: str = Field("L4", description="Modal GPU type for remote training (L4, A10G, A100, H100, ...).")
    modal_timeout: int = Field(6 * 3600, ge=60, description="Modal function timeout in seconds.")
    modal_cpu: float = Field(8.0, gt=0, allow_inf_nan=False, description="CPU cores per Modal container.")
    modal_memory: int = Field(32768, ge=1024, description="Memory per Modal container in MiB.")
    modal_hf_secret: str = Field("huggingface", description="Modal secret holding HF_TOKEN.")
    modal_kaggle_secret: str = Field("kaggle", description="Modal secret holding the Kaggle credentials.")
    modal_mlflow_secret: str | None = Field(None, description="Optional Modal secret with MLFLOW_* variables.")

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not DEVICE_PATTERN.fullmatch(value):
            raise ValueError("not a torch device vaseg trains on; use auto, cpu, cuda, cuda:N (N = 0, 1, ...) or mps")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _config_file.get() or DEFAULT_CONFIG_FILE
        return (init_settings, env_settings, _SettingsFileSource(settings_cls, toml_file=toml_file))

    @classmethod
    def secret_fields(cls) -> frozenset[str]:
        """Return the names of the fields that hold secrets (masked in output, never serialised)."""
        return frozenset(name for name, info in cls.model_fields.items() if "SecretStr" in repr(info.annotation))

    def masked_dump(self) -> dict[str, Any]:
        """Return the settings as JSON-ready values with every secret masked."""
        data = self.model_dump(mode="json")
        for name in self.secret_fields():
            data[name] = "**********" if data[name] else None
        return data

    def without_secrets_json(self) -> str:
        """Return the settings as JSON with the secret fields left out (for other processes)."""
        return self.model_dump_json(exclude=set(self.secret_fields()))

    def training_dataset(self) -> Path:
        """Return the dataset folder training reads (``dataset`` or else ``output_dir``)."""
        return self.dataset if self.dataset is not None else self.output_dir


# The concern each setting belongs to, in the order `vaseg config` prints them (a test checks that
# every field is in exactly one section).
SECTIONS: dict[str, tuple[str, ...]] = {
    "general": ("seed", "workers"),
    "raw": ("source", "kaggle_dataset", "raw_dir", "synthetic_count"),
    "dataset": ("output_dir", "limit", "shard_size", "row_group_size", "compression_level", "strict"),
    "hub": ("hf_repo", "hf_revision", "hf_private", "hf_token"),
    "train": (
        "dataset", "train_source", "run_dir", "epochs", "batch_size", "lr", "device", "scale", "train_limit",
        "resume", "init_from", "amp", "compile", "dropout", "patience",
    ),
    "modal": (
        "modal_app_name", "modal_volume", "gpu", "modal_timeout", "modal_cpu", "modal_memory", "modal_hf_secret",
        "modal_kaggle_secret", "modal_mlflow_secret",
    ),
}  # fmt: skip


class _SettingsFileSource(TomlConfigSettingsSource):
    """The TOML settings file, refused when it holds the Hub token: credentials never live in settings files."""

    def __init__(self, settings_cls: type[BaseSettings], toml_file: Path) -> None:
        super().__init__(settings_cls, toml_file=toml_file)
        tokens = sorted(key for key in self.toml_data if key.lower() in _TOKEN_KEYS)
        if tokens:
            raise VasegError(
                f"{toml_file} sets {tokens[0]}, but credentials are never stored in settings files: "
                f"{TOKEN_HELP}. Remove the {tokens[0]} line from {toml_file} (and revoke the token if the "
                "file was shared).",
                exit_code=2,
            )


@contextmanager
def _using_config(path: Path | None) -> Iterator[None]:
    token = _config_file.set(path)
    try:
        yield
    finally:
        _config_file.reset(token)


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Return the effective settings; ``overrides`` (CLI options) that are None are ignored."""
    if config is not None and not config.is_file():
        raise VasegError(
            f"Config file {config} does not exist. Pass an existing TOML file to --config, "
            f"or drop --config to use {DEFAULT_CONFIG_FILE} in the working directory."
        )
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        with _using_config(config):
            return Settings(**given)
    except ValidationError as err:
        problems = "; ".join(_describe(e) for e in err.errors())
        source = config or DEFAULT_CONFIG_FILE
        raise VasegError(
            f"Invalid settings ({problems}). Fix the command-line option, the VASEG_* environment "
            f"variable or the entry in {source}.",
            exit_code=2,
        ) from None
    except (OSError, ValueError) as err:
        source = config or DEFAULT_CONFIG_FILE
        raise VasegError(f"Could not read config file {source}: {err}. Fix or remove the file.") from None


def _describe(error: dict[str, Any]) -> str:
    """Return ``name=value: problem`` for one validation error; the value only when it cannot be a secret."""
    name = ".".join(str(part) for part in error["loc"]) or "settings"
    field = _field_named(name)
    if error["type"] == "extra_forbidden" or field is None:
        return f"{name} is not a vaseg setting (its value is not shown){_suggestion(name)}"
    value = "<secret>" if field in Settings.secret_fields() else repr(error.get("input"))
    return f"{name}={value}: {error['msg']}"


def _field_named(name: str) -> str | None:
    """Return the field that ``name`` (a field name or one of its aliases, e.g. VASEG_HF_TOKEN) sets, or None."""
    for field, info in Settings.model_fields.items():
        aliases = info.validation_alias.choices if isinstance(info.validation_alias, AliasChoices) else []
        if name.lower() in {field, *(str(alias).lower() for alias in aliases)}:
            return field
    return None


def _suggestion(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), list(Settings.model_fields), n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    if any(word in name.lower() for word in _CREDENTIAL_WORDS):
        hint += (
            " Credentials are never read from settings files: Kaggle reads KAGGLE_API_TOKEN, KAGGLE_USERNAME + "
            f"KAGGLE_KEY or ~/.kaggle, and {TOKEN_HELP}"
        )
    return hint
