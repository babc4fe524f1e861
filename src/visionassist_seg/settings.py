"""The one `Settings` object shared by every vaseg command.

Precedence, highest first: command-line options > ``VASEG_*`` environment variables >
``vaseg.toml`` in the working directory (or ``--config FILE``) > the defaults below.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from visionassist_seg.errors import VasegError

DEFAULT_CONFIG_FILE = Path("vaseg.toml")
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
    seed: int = Field(0, description="Seed for synthetic data, sampling, augmentation and training.")

    # --- precompute -----------------------------------------------------------
    output_dir: Path = Field(
        Path("precompute_output"), description="Precomputed dataset folder (the Hub repository layout)."
    )
    workers: int = Field(
        default_factory=_default_workers, ge=1, description="Worker processes (Modal containers with --remote)."
    )
    limit: int | None = Field(None, ge=1, description="Process at most this many samples per split.")
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
        None, description="Training dataset folder (precompute output); defaults to output_dir unless hf_repo is used."
    )
    run_dir: Path = Field(Path("runs/shallownet"), description="Training run folder (checkpoints, metrics, ONNX).")
    epochs: int = Field(15, ge=1, description="Training epochs.")
    batch_size: int = Field(32, ge=1, description="Training batch size.")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate.")
    device: str = Field("auto", description="Torch device: auto, cpu, cuda, cuda:N or mps.")
    scale: float = Field(1.0, gt=0, le=1, description="Train at this fraction of 400x640 (0 < scale <= 1).")
    train_limit: int | None = Field(None, ge=1, description="Use at most this many samples per split for training.")
    resume: Path | None = Field(None, description="Checkpoint (last.pt) to resume training from.")
    init_from: Path | None = Field(
        None,
        description="Start training from these weights (a vaseg best.pt/last.pt, a saved state dict in the "
        "reference's key names, or the reference's ONNX export) with a fresh optimiser at epoch 0.",
    )
    amp: bool = Field(True, description="Mixed precision on CUDA (ignored on CPU).")
    compile: bool = Field(False, description="torch.compile the model (needs a C++ compiler on CPU).")
    dropout: float = Field(0.2, ge=0, lt=1, description="Dropout probability of all 19 dropout layers (as the reference trains).")
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
    modal_cpu: float = Field(8.0, gt=0, description="CPU cores per Modal container.")
    modal_memory: int = Field(32768, ge=1024, description="Memory per Modal container in MiB.")
    modal_hf_secret: str = Field("huggingface", description="Modal secret holding HF_TOKEN.")
    modal_kaggle_secret: str = Field("kaggle", description="Modal secret holding the Kaggle credentials.")
    modal_mlflow_secret: str | None = Field(None, description="Optional Modal secret with MLFLOW_* variables.")

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
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file))

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

    def local_training_folder(self) -> Path | None:
        """Return the local folder training reads per ``train_source``, or None for the Hub dataset.

        'local' is ``dataset`` (else ``output_dir``), 'hub' is ``hf_repo``, 'auto' is
        ``dataset`` if set, else ``output_dir`` if it holds shards, else ``hf_repo``.
        """
        from visionassist_seg.data.schema import list_shards

        if self.train_source == "hub":
            return None
        if self.train_source == "local" or self.dataset is not None:
            return self.training_dataset()
        return self.output_dir if list_shards(self.output_dir) else None


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
    name = ".".join(str(part) for part in error["loc"]) or "settings"
    value = "<secret>" if "token" in name.lower() else repr(error.get("input"))  # loc may be the alias VASEG_HF_TOKEN
    return f"{name}={value}: {error['msg']}"
