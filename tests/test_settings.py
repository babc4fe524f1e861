"""Settings precedence (CLI > VASEG_* env > vaseg.toml / --config > defaults), errors and secret masking."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from visionassist_seg.errors import VasegError
from visionassist_seg.settings import Settings, load_settings

TOKEN = "hf_s3cretT0kenValue1234567890abcd"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path) -> Path:
    """No VASEG_* or HF_TOKEN variables; the working directory is an empty tmp folder."""
    for name in list(os.environ):
        if name.startswith("VASEG_") or name == "HF_TOKEN":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_settings_defaults():
    settings = load_settings()
    assert settings.epochs == 15
    assert settings.source == "kaggle"
    assert settings.kaggle_dataset == "soumicksarker/openeds-dataset"
    assert settings.raw_dir == Path("openeds_raw")
    assert settings.hf_token is None


def test_settings_toml_in_cwd_beats_defaults(clean_env):
    write_toml(clean_env / "vaseg.toml", 'epochs = 3\nraw_dir = "data/raw"\nsource = "synthetic"\n')
    settings = load_settings()
    assert settings.epochs == 3
    assert settings.raw_dir == Path("data/raw")
    assert settings.source == "synthetic"
    assert settings.batch_size == 32  # untouched fields keep their defaults


def test_settings_env_beats_toml(clean_env, monkeypatch):
    write_toml(clean_env / "vaseg.toml", "epochs = 3\nbatch_size = 8\n")
    monkeypatch.setenv("VASEG_EPOCHS", "5")
    settings = load_settings()
    assert settings.epochs == 5
    assert settings.batch_size == 8


def test_settings_cli_beats_env_and_toml(clean_env, monkeypatch):
    write_toml(clean_env / "vaseg.toml", "epochs = 3\n")
    monkeypatch.setenv("VASEG_EPOCHS", "5")
    assert load_settings(epochs=7).epochs == 7


def test_settings_none_overrides_are_ignored(clean_env, monkeypatch):
    monkeypatch.setenv("VASEG_EPOCHS", "5")
    settings = load_settings(epochs=None, raw_dir=None)
    assert settings.epochs == 5
    assert settings.raw_dir == Path("openeds_raw")


def test_settings_config_file_replaces_cwd_toml(clean_env, monkeypatch):
    write_toml(clean_env / "vaseg.toml", "batch_size = 8\n")
    config = write_toml(clean_env / "other.toml", "epochs = 4\n")
    settings = load_settings(config)
    assert settings.epochs == 4
    assert settings.batch_size == 32
    monkeypatch.setenv("VASEG_EPOCHS", "6")
    assert load_settings(config).epochs == 6
    assert load_settings(config, epochs=9).epochs == 9


def test_settings_config_file_applies_only_to_that_call(clean_env):
    write_toml(clean_env / "vaseg.toml", "epochs = 3\n")
    config = write_toml(clean_env / "other.toml", "epochs = 4\n")
    assert load_settings(config).epochs == 4
    assert load_settings().epochs == 3


def test_settings_missing_config_file(clean_env):
    missing = clean_env / "nope.toml"
    with pytest.raises(VasegError) as caught:
        load_settings(missing)
    assert str(missing) in caught.value.message
    assert "--config" in caught.value.message
    assert caught.value.exit_code == 1


@pytest.mark.parametrize(
    ("overrides", "field", "value"),
    [({"epochs": 0}, "epochs", "0"), ({"lr": -1.0}, "lr", "-1.0"), ({"source": "ftp"}, "source", "ftp"), ({"scale": 1.5}, "scale", "1.5")],
)
def test_settings_invalid_override(overrides, field, value):
    with pytest.raises(VasegError) as caught:
        load_settings(**overrides)
    assert caught.value.exit_code == 2
    assert f"{field}=" in caught.value.message
    assert value in caught.value.message


def test_settings_invalid_env_value(monkeypatch):
    monkeypatch.setenv("VASEG_EPOCHS", "many")
    with pytest.raises(VasegError) as caught:
        load_settings()
    assert caught.value.exit_code == 2
    assert "epochs" in caught.value.message
    assert "many" in caught.value.message


def test_settings_invalid_toml_value(clean_env):
    write_toml(clean_env / "vaseg.toml", 'batch_size = "big"\n')
    with pytest.raises(VasegError) as caught:
        load_settings()
    assert caught.value.exit_code == 2
    assert "batch_size" in caught.value.message
    assert "vaseg.toml" in caught.value.message


def test_settings_unknown_toml_key(clean_env):
    config = write_toml(clean_env / "run.toml", "epoch = 3\n")
    with pytest.raises(VasegError) as caught:
        load_settings(config)
    assert caught.value.exit_code == 2
    assert "epoch" in caught.value.message
    assert str(config) in caught.value.message


def test_settings_unparsable_toml(clean_env):
    config = write_toml(clean_env / "broken.toml", "epochs = = 3\n")
    with pytest.raises(VasegError) as caught:
        load_settings(config)
    assert str(config) in caught.value.message


def test_settings_hf_token_from_env_is_secret(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    settings = load_settings()
    assert isinstance(settings.hf_token, SecretStr)
    assert settings.hf_token.get_secret_value() == TOKEN
    dumped = settings.masked_dump()
    assert dumped["hf_token"] == "**********"
    for text in (json.dumps(dumped), str(settings), repr(settings), str(dumped)):
        assert TOKEN not in text


def test_settings_vaseg_hf_token_beats_hf_token(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("VASEG_HF_TOKEN", "hf_other")
    assert load_settings().hf_token.get_secret_value() == "hf_other"


def test_settings_masked_dump_without_token_is_json_ready():
    dumped = load_settings().masked_dump()
    assert dumped["hf_token"] is None
    assert dumped["raw_dir"] == "openeds_raw"
    assert set(dumped) == set(Settings.model_fields)
    json.dumps(dumped)


def test_settings_error_never_shows_token(clean_env, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with pytest.raises(VasegError) as caught:
        load_settings(epochs=0)
    assert TOKEN not in str(caught.value)
    assert TOKEN not in caught.value.message


@pytest.mark.parametrize("key", ["hf_token", "HF_TOKEN", "VASEG_HF_TOKEN"])
def test_settings_hf_token_in_toml_is_refused_without_echo(clean_env, key):
    write_toml(clean_env / "vaseg.toml", f'{key} = "{TOKEN}"\n')
    with pytest.raises(VasegError) as caught:
        load_settings()
    assert caught.value.exit_code == 2
    message = caught.value.message
    assert key in message and "vaseg.toml" in message
    assert "HF_TOKEN" in message and "hf auth login" in message
    assert TOKEN not in str(caught.value) and TOKEN[:8] not in message


def test_settings_hf_token_env_is_still_accepted_beside_a_toml(clean_env, monkeypatch):
    write_toml(clean_env / "vaseg.toml", "epochs = 3\n")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert load_settings().hf_token.get_secret_value() == TOKEN


@pytest.mark.parametrize("key", ["kaggle_kee", "hf_tokn", "modal_secret_value", "epoch", "anything"])
def test_settings_unknown_key_never_echoes_its_value(clean_env, key):
    config = write_toml(clean_env / "run.toml", f'{key} = "{TOKEN}"\n')
    with pytest.raises(VasegError) as caught:
        load_settings(config)
    assert caught.value.exit_code == 2
    assert key in caught.value.message and str(config) in caught.value.message
    assert TOKEN not in str(caught.value) and TOKEN[:8] not in caught.value.message


def test_settings_unknown_key_suggests_the_near_field(clean_env):
    write_toml(clean_env / "vaseg.toml", "batch_sise = 4\n")
    with pytest.raises(VasegError, match="did you mean batch_size"):
        load_settings()


def test_settings_credential_like_unknown_key_says_where_credentials_belong(clean_env):
    write_toml(clean_env / "vaseg.toml", 'kaggle_kee = "abc123secret"\n')
    with pytest.raises(VasegError) as caught:
        load_settings()
    assert "KAGGLE_KEY" in caught.value.message and "abc123secret" not in caught.value.message


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"seed": -5}, "seed"),
        ({"device": "meta"}, "device"),
        ({"device": "tpu"}, "device"),
        ({"device": "cuda:x"}, "device"),
        ({"device": "CPU "}, "device"),
        ({"lr": float("inf")}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"dropout": float("nan")}, "dropout"),
    ],
)
def test_settings_invalid_seed_device_and_non_finite_floats_are_usage_errors(overrides, field):
    with pytest.raises(VasegError) as caught:
        load_settings(**overrides)
    assert caught.value.exit_code == 2
    assert f"{field}=" in caught.value.message


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"])
def test_settings_accepts_every_documented_device(device):
    assert load_settings(device=device).device == device


def test_settings_invalid_env_device_is_one_paragraph(monkeypatch):
    monkeypatch.setenv("VASEG_DEVICE", "meta")
    with pytest.raises(VasegError) as caught:
        load_settings()
    assert caught.value.exit_code == 2
    assert "auto, cpu, cuda, cuda:N" in caught.value.message and "\n" not in caught.value.message


def test_settings_invalid_token_override_is_not_echoed():
    with pytest.raises(VasegError) as caught:
        load_settings(hf_token=987654321)
    assert "hf_token" in caught.value.message.lower()
    assert "987654321" not in str(caught.value)
