"""The one `Settings` object shared by every vaseg command, grouped by concern.

``Settings`` holds ``seed`` and ``workers`` (used by every step) and one section per
concern: ``raw`` (the raw OpenEDS tree), ``dataset`` (the precomputed dataset folder),
``hub`` (the Hugging Face repository), ``train`` (a training run) and ``modal`` (remote
runs). A name means one thing everywhere: ``dataset.dir`` is the dataset folder that
precompute writes and validate, push and training read.

Precedence, highest first: command-line options > environment variables
(``VASEG_SEED``, ``VASEG_TRAIN__EPOCHS``: section and name joined by ``__``) > the
``[train]``-style sections of ``vaseg.toml`` in the working directory (or ``--config
FILE``) > the defaults below. Settings files and variables written for the flat names
of earlier vaseg builds (``epochs = 3``, ``VASEG_EPOCHS``) are still read, each with a warning
naming its new place (`LEGACY_NAMES`).
"""

from __future__ import annotations

import difflib
import os
import re
import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from visionassist_seg.errors import VasegError, VasegWarning

DEFAULT_CONFIG_FILE = Path("vaseg.toml")
ENV_PREFIX = "VASEG_"
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:[0-9]+)?")
# Environment variables that set the Hub token, highest precedence first (besides VASEG_HUB__TOKEN).
TOKEN_VARIABLES = ("VASEG_HF_TOKEN", "HF_TOKEN")
# VASEG_* variables that are not settings.
_OTHER_VARIABLES = frozenset({"VASEG_DEBUG", "VASEG_HF_TOKEN"})
# An unknown key whose name looks like one of these may hold a credential someone misspelled.
_CREDENTIAL_WORDS = ("token", "key", "kee", "secret", "pass", "credential", "kaggle", "hf_", "huggingface")
TOKEN_HELP = "the Hub token belongs in the HF_TOKEN (or VASEG_HF_TOKEN) environment variable or in `hf auth login`"
_config_file: ContextVar[Path | None] = ContextVar("vaseg_config_file", default=None)


def _default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class RawSettings(_Section):
    """The raw OpenEDS tree: where `download` gets it and where it lives."""

    source: Literal["kaggle", "synthetic"] = Field(
        "kaggle", description="Where `download` gets raw data: the Kaggle dataset or the built-in synthetic generator."
    )
    kaggle_dataset: str = Field(
        "soumicksarker/openeds-dataset", description="Kaggle dataset handle (owner/name) of raw OpenEDS."
    )
    dir: Path = Field(Path("openeds_raw"), description="Folder holding (or receiving) the raw OpenEDS tree (--raw-dir).")
    synthetic_count: int = Field(
        64, ge=1, description="Synthetic source: number of train samples (validation and test get a quarter each)."
    )


class DatasetSettings(_Section):
    """The precomputed dataset folder and how precompute writes it."""

    dir: Path = Field(
        Path("precompute_output"),
        description="Dataset folder (--dataset; precompute also takes --output-dir): precompute writes it, "
        "validate, push and training read it.",
    )
    limit: int | None = Field(None, ge=1, description="Precompute: use at most this many samples of each split (--limit).")
    shard_size: int = Field(256, ge=1, description="Raw samples per parquet shard (bounds peak memory).")
    row_group_size: int = Field(16, ge=1, description="Rows per parquet row group (bounds writer memory).")
    compression_level: int = Field(
        2, ge=1, le=22, description="zstd level for the distance-map column (most of the bytes; 2 is the size/speed knee)."
    )
    strict: bool = Field(False, description="Exit 1 if any sample is skipped as bad input.")


class HubSettings(_Section):
    """The Hugging Face Hub dataset repository."""

    repo: str = Field("Conner/openeds-precomputed", description="Hub dataset repository id (owner/name) (--hf-repo).")
    revision: str | None = Field(None, description="Hub branch, tag or commit to read or push to (--revision).")
    private: bool = Field(False, description="Create the Hub repository as private.")
    token: SecretStr | None = Field(
        None, description="Hub token: from HF_TOKEN, VASEG_HF_TOKEN or the saved `hf auth login` token. Never printed."
    )


class TrainSettings(_Section):
    """A training run: its folder, data source and recipe."""

    source: Literal["auto", "local", "hub"] = Field(
        "auto",
        description="Where training reads data: 'local' (dataset.dir), 'hub' (hub.repo via the Hub cache), "
        "'auto' (dataset.dir if it holds parquet splits, else hub.repo). --dataset means 'local', --hf-repo 'hub'.",
    )
    run_dir: Path = Field(Path("runs/shallownet"), description="Run folder: checkpoints, metrics, ONNX (--output-dir).")
    epochs: int = Field(15, ge=1, description="Training epochs.")
    batch_size: int = Field(32, ge=1, description="Training batch size.")
    lr: float = Field(1e-3, gt=0, allow_inf_nan=False, description="Adam learning rate (finite, > 0).")
    device: str = Field("auto", description="Torch device: auto, cpu, cuda, cuda:N or mps.")
    scale: float = Field(
        1.0, gt=0, le=1, allow_inf_nan=False, description="Train at this fraction of 400x640 (0 < scale <= 1)."
    )
    limit: int | None = Field(None, ge=1, description="Use at most this many samples of each split (--limit).")
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

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not DEVICE_PATTERN.fullmatch(value):
            raise ValueError("not a torch device vaseg trains on; use auto, cpu, cuda, cuda:N (N = 0, 1, ...) or mps")
        return value


class ModalSettings(_Section):
    """Remote runs on Modal: app, Volume, hardware and the secrets' names."""

    app_name: str = Field("vaseg", description="Modal app name.")
    volume: str = Field("vaseg-data", description="Modal Volume for dataset cache and run outputs.")
    gpu: str = Field("L4", description="Modal GPU type for remote training (L4, A10G, A100, H100, ...) (--gpu).")
    timeout: int = Field(6 * 3600, ge=60, description="Modal function timeout in seconds.")
    cpu: float = Field(8.0, gt=0, allow_inf_nan=False, description="CPU cores per Modal container.")
    memory: int = Field(32768, ge=1024, description="Memory per Modal container in MiB.")
    hf_secret: str = Field("huggingface", description="Modal secret holding HF_TOKEN.")
    kaggle_secret: str = Field("kaggle", description="Modal secret holding the Kaggle credentials.")
    mlflow_secret: str | None = Field(None, description="Optional Modal secret with MLFLOW_* variables.")


class Settings(BaseSettings):
    """Every knob of vaseg; each command reads the sections it needs."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    seed: int = Field(0, ge=0, description="Seed for synthetic data, sampling, augmentation and training (>= 0).")
    workers: int = Field(
        default_factory=_default_workers, ge=1, description="Worker processes (Modal containers with --remote)."
    )
    raw: RawSettings = Field(default_factory=RawSettings, description=RawSettings.__doc__)
    dataset: DatasetSettings = Field(default_factory=DatasetSettings, description=DatasetSettings.__doc__)
    hub: HubSettings = Field(default_factory=HubSettings, description=HubSettings.__doc__)
    train: TrainSettings = Field(default_factory=TrainSettings, description=TrainSettings.__doc__)
    modal: ModalSettings = Field(default_factory=ModalSettings, description=ModalSettings.__doc__)

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
        return (
            init_settings,
            env_settings,
            _OtherEnvSource(settings_cls),
            _SettingsFileSource(settings_cls, toml_file=toml_file),
        )

    def masked_dump(self) -> dict[str, Any]:
        """Return the settings as JSON-ready nested values with the Hub token masked."""
        data = self.model_dump(mode="json")
        data["hub"]["token"] = "**********" if self.hub.token is not None else None
        return data

    def without_secrets_json(self) -> str:
        """Return the settings as JSON with the Hub token left out (for other processes)."""
        return self.model_dump_json(exclude={"hub": {"token"}})

    def without_secrets(self) -> Settings:
        """Return a copy without the Hub token (to hand to worker processes or records)."""
        return self.model_copy(update={"hub": self.hub.model_copy(update={"token": None})})

    def updated(self, **changes: Any) -> Settings:
        """Return a copy with top-level fields or section fields replaced (counted as explicitly set).

        ``settings.updated(seed=1, train={"epochs": 3})``; values are not validated again.
        """
        update = {
            name: getattr(self, name).model_copy(update=value) if isinstance(value, dict) else value
            for name, value in changes.items()
        }
        return self.model_copy(update=update)


# Section name -> its model, in the order `vaseg config` prints them.
SECTION_MODELS: dict[str, type[_Section]] = {
    "raw": RawSettings,
    "dataset": DatasetSettings,
    "hub": HubSettings,
    "train": TrainSettings,
    "modal": ModalSettings,
}

# The flat names of earlier vaseg builds (settings files, VASEG_* variables, old checkpoints) -> (section, name).
LEGACY_NAMES: dict[str, tuple[str, str]] = {
    "source": ("raw", "source"),
    "kaggle_dataset": ("raw", "kaggle_dataset"),
    "raw_dir": ("raw", "dir"),
    "synthetic_count": ("raw", "synthetic_count"),
    "output_dir": ("dataset", "dir"),
    "dataset": ("dataset", "dir"),
    "limit": ("dataset", "limit"),
    "shard_size": ("dataset", "shard_size"),
    "row_group_size": ("dataset", "row_group_size"),
    "compression_level": ("dataset", "compression_level"),
    "strict": ("dataset", "strict"),
    "hf_repo": ("hub", "repo"),
    "hf_revision": ("hub", "revision"),
    "hf_private": ("hub", "private"),
    "train_source": ("train", "source"),
    "run_dir": ("train", "run_dir"),
    "epochs": ("train", "epochs"),
    "batch_size": ("train", "batch_size"),
    "lr": ("train", "lr"),
    "device": ("train", "device"),
    "scale": ("train", "scale"),
    "train_limit": ("train", "limit"),
    "resume": ("train", "resume"),
    "init_from": ("train", "init_from"),
    "amp": ("train", "amp"),
    "compile": ("train", "compile"),
    "dropout": ("train", "dropout"),
    "patience": ("train", "patience"),
    "modal_app_name": ("modal", "app_name"),
    "modal_volume": ("modal", "volume"),
    "gpu": ("modal", "gpu"),
    "modal_timeout": ("modal", "timeout"),
    "modal_cpu": ("modal", "cpu"),
    "modal_memory": ("modal", "memory"),
    "modal_hf_secret": ("modal", "hf_secret"),
    "modal_kaggle_secret": ("modal", "kaggle_secret"),
    "modal_mlflow_secret": ("modal", "mlflow_secret"),
}


def setting_names() -> list[str]:
    """Return every setting's dotted name (``seed``, ``train.epochs``, ...), in `vaseg config` order."""
    top = [name for name in Settings.model_fields if name not in SECTION_MODELS]
    return top + [f"{section}.{name}" for section, model in SECTION_MODELS.items() for name in model.model_fields]


def toml_key(dotted: str) -> str:
    """Return how a settings file sets ``dotted``: ``[train] epochs`` or ``seed``."""
    section, _, name = dotted.rpartition(".")
    return f"[{section}] {name}" if section else name


def env_name(dotted: str) -> str:
    """Return the environment variable that sets ``dotted``: ``VASEG_TRAIN__EPOCHS``."""
    return ENV_PREFIX + dotted.replace(".", "__").upper()


def nest_legacy(flat: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Return ``flat`` with earlier builds' flat names moved into their sections, and the old names found.

    A value given under the new name wins over the old name's; of the old ``output_dir``
    (what precompute wrote) and ``dataset`` (what the other commands read), ``dataset`` wins.
    """
    nested = dict(flat)
    legacy = {
        key: nested.pop(key)
        for key in list(flat)
        if key in LEGACY_NAMES and not (key == "dataset" and isinstance(flat[key], dict))
    }
    for old, value in sorted(legacy.items(), key=lambda item: item[0] == "dataset"):
        section, name = LEGACY_NAMES[old]
        if value is None:
            continue
        given = flat.get(section) if isinstance(flat.get(section), dict) else {}
        target = nested.setdefault(section, {})
        if isinstance(target, dict) and name not in given:
            nested[section] = {**target, name: value}
    return nested, sorted(legacy)


def legacy_warning(old: str, where: str) -> str:
    """Return the warning for the flat name ``old`` used in ``where`` (a settings file or the environment)."""
    new = ".".join(LEGACY_NAMES[old])
    if where == "environment":
        return f"{ENV_PREFIX}{old.upper()} is the old name of {env_name(new)}; vaseg reads it for now: rename the variable."
    return f"{where}: `{old}` is now `{toml_key(new)}`; vaseg reads it for now: move the line into the [{LEGACY_NAMES[old][0]}] section."


class _OtherEnvSource(PydanticBaseSettingsSource):
    """The Hub token from HF_TOKEN / VASEG_HF_TOKEN, and earlier builds' flat VASEG_* names (with a warning)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # required by the base class
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        environ = {key.upper(): value for key, value in os.environ.items()}
        flat = {}
        for key, value in environ.items():
            if not key.startswith(ENV_PREFIX) or key in _OTHER_VARIABLES or "__" in key:
                continue
            name = key[len(ENV_PREFIX) :].lower()
            if name in LEGACY_NAMES:
                warnings.warn(legacy_warning(name, "environment"), VasegWarning, stacklevel=2)
                flat[name] = value
            elif name not in Settings.model_fields:
                warnings.warn(
                    f"{key} is not a vaseg setting and is ignored{_suggestion(name, env=True)}", VasegWarning, stacklevel=2
                )
        nested, _ = nest_legacy(flat)
        token = next((environ[name] for name in TOKEN_VARIABLES if environ.get(name)), None)
        if token is not None:
            nested.setdefault("hub", {})["token"] = token
        return nested


class _SettingsFileSource(TomlConfigSettingsSource):
    """The TOML settings file: refused when it holds the Hub token; earlier builds' flat keys read with a warning."""

    def __init__(self, settings_cls: type[BaseSettings], toml_file: Path) -> None:
        self._path = toml_file
        super().__init__(settings_cls, toml_file=toml_file)

    def _read_files(self, files: Any, deep_merge: bool = False) -> dict[str, Any]:
        data = super()._read_files(files, deep_merge=deep_merge)
        hub = data.get("hub") if isinstance(data.get("hub"), dict) else {}
        tokens = sorted({key for key in data if key.lower() in ("hf_token", "vaseg_hf_token")} | (
            {"[hub] token"} if "token" in hub else set()))  # fmt: skip
        if tokens:
            raise VasegError(
                f"{self._path} sets {tokens[0]}, but credentials are never stored in settings files: "
                f"{TOKEN_HELP}. Remove the {tokens[0]} line from {self._path} (and revoke the token if the "
                "file was shared).",
                exit_code=2,
            )
        nested, found = nest_legacy(data)
        for old in found:
            warnings.warn(legacy_warning(old, str(self._path)), VasegWarning, stacklevel=2)
        return nested


@contextmanager
def _using_config(path: Path | None) -> Iterator[None]:
    token = _config_file.set(path)
    try:
        yield
    finally:
        _config_file.reset(token)


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Return the effective settings with ``overrides`` (CLI options) on top; None values are ignored.

    ``overrides`` are top-level fields or sections given as dicts:
    ``load_settings(seed=1, train={"epochs": 3, "lr": None})``.
    """
    if config is not None and not config.is_file():
        raise VasegError(
            f"Config file {config} does not exist. Pass an existing TOML file to --config, "
            f"or drop --config to use {DEFAULT_CONFIG_FILE} in the working directory."
        )
    given = _without_none(overrides)
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


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    given = {}
    for key, value in values.items():
        if isinstance(value, dict):
            value = {name: item for name, item in value.items() if item is not None}
            if not value:
                continue
        if value is not None:
            given[key] = value
    return given


def _describe(error: dict[str, Any]) -> str:
    """Return ``name=value: problem`` for one validation error; the value only when it cannot be a secret."""
    name = ".".join(str(part) for part in error["loc"]) or "settings"
    if error["type"] == "extra_forbidden" or name not in setting_names():
        return f"{toml_key(name)} is not a vaseg setting (its value is not shown){_suggestion(name)}"
    value = "<secret>" if name == "hub.token" else repr(error.get("input"))
    return f"{toml_key(name)}={value}: {error['msg']}"


def _suggestion(name: str, *, env: bool = False) -> str:
    """Return '; did you mean X?' for a mistyped setting (and where credentials belong, if it looks like one)."""
    known = setting_names()
    leaf = name.lower().replace("__", ".")
    by_leaf = {dotted.rpartition(".")[2]: dotted for dotted in known}
    close = difflib.get_close_matches(leaf, known, n=1) or [
        by_leaf[match] for match in difflib.get_close_matches(leaf.rpartition(".")[2], list(by_leaf), n=1)
    ]
    if leaf in LEGACY_NAMES:  # a name of earlier builds
        new = ".".join(LEGACY_NAMES[leaf])
        return f"; it is now {env_name(new) if env else toml_key(new)}"
    hint = f"; did you mean {env_name(close[0]) if env else toml_key(close[0])}?" if close else ""
    if any(word in name.lower() for word in _CREDENTIAL_WORDS):
        hint += (
            " Credentials are never read from settings files: Kaggle reads KAGGLE_API_TOKEN, KAGGLE_USERNAME + "
            f"KAGGLE_KEY or ~/.kaggle, and {TOKEN_HELP}"
        )
    return hint
