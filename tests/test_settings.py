"""Settings: sections, precedence (CLI > VASEG_* env > vaseg.toml / --config > defaults), old names, errors, secrets."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
from pydantic import SecretStr

from visionassist_seg.errors import VasegError, VasegWarning
from visionassist_seg.settings import (
    LEGACY_NAMES,
    SECTION_MODELS,
    Settings,
    env_name,
    load_settings,
    nest_legacy,
    setting_names,
    toml_key,
)

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


def load_quietly(*args, **kwargs) -> tuple[Settings, list[str]]:
    """Return the settings and the texts of the VasegWarnings that loading them gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settings = load_settings(*args, **kwargs)
    return settings, [str(w.message) for w in caught if issubclass(w.category, VasegWarning)]


def test_settings_defaults():
    settings = load_settings()
    assert settings.train.epochs == 15
    assert settings.raw.source == "kaggle"
    assert settings.raw.kaggle_dataset == "soumicksarker/openeds-dataset"
    assert settings.raw.dir == Path("openeds_raw")
    assert settings.dataset.dir == Path("precompute_output")
    assert settings.hub.token is None


def test_every_setting_has_a_description_and_one_home():
    names = setting_names()
    assert len(names) == len(set(names)) == 2 + sum(len(model.model_fields) for model in SECTION_MODELS.values())
    for section, model in SECTION_MODELS.items():
        assert Settings.model_fields[section].description
        for name, info in model.model_fields.items():
            assert info.description, f"{section}.{name}"
    # Every old flat name maps to an existing setting.
    assert {".".join(target) for target in LEGACY_NAMES.values()} <= set(names)


def test_settings_toml_sections_beat_defaults(clean_env):
    write_toml(clean_env / "vaseg.toml", '[train]\nepochs = 3\n\n[raw]\ndir = "data/raw"\nsource = "synthetic"\n')
    settings, said = load_quietly()
    assert settings.train.epochs == 3
    assert settings.raw.dir == Path("data/raw")
    assert settings.raw.source == "synthetic"
    assert settings.train.batch_size == 32  # untouched fields keep their defaults
    assert said == []


def test_settings_env_beats_toml(clean_env, monkeypatch):
    write_toml(clean_env / "vaseg.toml", "seed = 1\n[train]\nepochs = 3\nbatch_size = 8\n")
    monkeypatch.setenv("VASEG_TRAIN__EPOCHS", "5")
    monkeypatch.setenv("VASEG_SEED", "2")
    settings = load_settings()
    assert (settings.train.epochs, settings.train.batch_size, settings.seed) == (5, 8, 2)


def test_settings_cli_beats_env_and_toml(clean_env, monkeypatch):
    write_toml(clean_env / "vaseg.toml", "[train]\nepochs = 3\n")
    monkeypatch.setenv("VASEG_TRAIN__EPOCHS", "5")
    assert load_settings(train={"epochs": 7}).train.epochs == 7


def test_settings_none_overrides_are_ignored(clean_env, monkeypatch):
    monkeypatch.setenv("VASEG_TRAIN__EPOCHS", "5")
    settings = load_settings(seed=None, train={"epochs": None}, raw={"dir": None})
    assert settings.train.epochs == 5
    assert settings.raw.dir == Path("openeds_raw")
    assert "raw" not in settings.model_fields_set  # nothing was given for it


def test_settings_config_file_replaces_cwd_toml(clean_env, monkeypatch):
    write_toml(clean_env / "vaseg.toml", "[train]\nbatch_size = 8\n")
    config = write_toml(clean_env / "other.toml", "[train]\nepochs = 4\n")
    settings = load_settings(config)
    assert settings.train.epochs == 4
    assert settings.train.batch_size == 32
    monkeypatch.setenv("VASEG_TRAIN__EPOCHS", "6")
    assert load_settings(config).train.epochs == 6
    assert load_settings(config, train={"epochs": 9}).train.epochs == 9


def test_settings_config_file_applies_only_to_that_call(clean_env):
    write_toml(clean_env / "vaseg.toml", "[train]\nepochs = 3\n")
    config = write_toml(clean_env / "other.toml", "[train]\nepochs = 4\n")
    assert load_settings(config).train.epochs == 4
    assert load_settings().train.epochs == 3


def test_settings_missing_config_file(clean_env):
    missing = clean_env / "nope.toml"
    with pytest.raises(VasegError) as caught:
        load_settings(missing)
    assert str(missing) in caught.value.message
    assert "--config" in caught.value.message
    assert caught.value.exit_code == 1


# --- the flat names of earlier builds ----------------------------------------------------


def test_old_flat_toml_keys_are_read_into_their_sections_with_a_warning_each(clean_env):
    write_toml(
        clean_env / "vaseg.toml",
        'epochs = 3\nraw_dir = "data/raw"\noutput_dir = "ds"\nhf_repo = "me/eyes"\nmodal_cpu = 2.0\ngpu = "A100"\n',
    )
    settings, said = load_quietly()
    assert (settings.train.epochs, settings.raw.dir, settings.dataset.dir) == (3, Path("data/raw"), Path("ds"))
    assert (settings.hub.repo, settings.modal.cpu, settings.modal.gpu) == ("me/eyes", 2.0, "A100")
    assert len(said) == 6
    assert any("`epochs` is now `[train] epochs`" in text and "vaseg.toml" in text for text in said)
    assert any("`output_dir` is now `[dataset] dir`" in text for text in said)
    assert any("`modal_cpu` is now `[modal] cpu`" in text for text in said)


def test_old_flat_env_variables_are_read_with_a_warning_naming_the_new_variable(monkeypatch):
    monkeypatch.setenv("VASEG_EPOCHS", "4")
    monkeypatch.setenv("VASEG_HF_REPO", "me/eyes")
    settings, said = load_quietly()
    assert settings.train.epochs == 4 and settings.hub.repo == "me/eyes"
    assert sorted(said) == [
        "VASEG_EPOCHS is the old name of VASEG_TRAIN__EPOCHS; vaseg reads it for now: rename the variable.",
        "VASEG_HF_REPO is the old name of VASEG_HUB__REPO; vaseg reads it for now: rename the variable.",
    ]


def test_new_names_win_over_old_ones(clean_env, monkeypatch):
    write_toml(clean_env / "vaseg.toml", "epochs = 3\n[train]\nepochs = 4\n")
    assert load_quietly()[0].train.epochs == 4
    monkeypatch.setenv("VASEG_EPOCHS", "5")
    monkeypatch.setenv("VASEG_TRAIN__EPOCHS", "6")
    assert load_quietly()[0].train.epochs == 6


def test_old_dataset_wins_over_old_output_dir():
    nested, found = nest_legacy({"output_dir": "written", "dataset": "read", "epochs": 2})
    assert nested == {"dataset": {"dir": "read"}, "train": {"epochs": 2}}
    assert found == ["dataset", "epochs", "output_dir"]
    assert nest_legacy({"dataset": {"dir": "x"}}) == ({"dataset": {"dir": "x"}}, [])  # the new section


def test_an_unknown_vaseg_variable_is_warned_about_with_the_near_name(monkeypatch):
    monkeypatch.setenv("VASEG_EPOHCS", "4")
    monkeypatch.setenv("VASEG_DEBUG", "1")  # not a setting, but vaseg's own
    settings, said = load_quietly()
    assert settings.train.epochs == 15
    assert said == ["VASEG_EPOHCS is not a vaseg setting and is ignored; did you mean VASEG_TRAIN__EPOCHS?"]


def test_a_mistyped_nested_variable_is_a_usage_error(monkeypatch):
    monkeypatch.setenv("VASEG_TRAIN__EPOHCS", "4")
    with pytest.raises(VasegError, match=r"\[train\] epohcs is not a vaseg setting") as caught:
        load_settings()
    assert caught.value.exit_code == 2 and "did you mean [train] epochs?" in caught.value.message


def test_names_in_files_and_variables():
    assert toml_key("train.epochs") == "[train] epochs" and toml_key("seed") == "seed"
    assert env_name("modal.app_name") == "VASEG_MODAL__APP_NAME" and env_name("seed") == "VASEG_SEED"


# --- invalid values -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "value"),
    [
        ({"train": {"epochs": 0}}, "[train] epochs", "0"),
        ({"train": {"lr": -1.0}}, "[train] lr", "-1.0"),
        ({"raw": {"source": "ftp"}}, "[raw] source", "ftp"),
        ({"train": {"scale": 1.5}}, "[train] scale", "1.5"),
    ],
)
def test_settings_invalid_override(overrides, field, value):
    with pytest.raises(VasegError) as caught:
        load_settings(**overrides)
    assert caught.value.exit_code == 2
    assert f"{field}=" in caught.value.message
    assert value in caught.value.message


def test_settings_invalid_env_value(monkeypatch):
    monkeypatch.setenv("VASEG_TRAIN__EPOCHS", "many")
    with pytest.raises(VasegError) as caught:
        load_settings()
    assert caught.value.exit_code == 2
    assert "[train] epochs" in caught.value.message
    assert "many" in caught.value.message


def test_settings_invalid_toml_value(clean_env):
    write_toml(clean_env / "vaseg.toml", '[train]\nbatch_size = "big"\n')
    with pytest.raises(VasegError) as caught:
        load_settings()
    assert caught.value.exit_code == 2
    assert "[train] batch_size" in caught.value.message
    assert "vaseg.toml" in caught.value.message


def test_settings_unknown_toml_key(clean_env):
    config = write_toml(clean_env / "run.toml", "[train]\nepoch = 3\n")
    with pytest.raises(VasegError) as caught:
        load_settings(config)
    assert caught.value.exit_code == 2
    assert "[train] epoch is not a vaseg setting" in caught.value.message
    assert str(config) in caught.value.message


def test_settings_unknown_section(clean_env):
    config = write_toml(clean_env / "run.toml", "[training]\nepochs = 3\n")
    with pytest.raises(VasegError, match="training is not a vaseg setting") as caught:
        load_settings(config)
    assert caught.value.exit_code == 2 and "did you mean [train]" in caught.value.message


def test_settings_unparsable_toml(clean_env):
    config = write_toml(clean_env / "broken.toml", "epochs = = 3\n")
    with pytest.raises(VasegError) as caught:
        load_settings(config)
    assert str(config) in caught.value.message


# --- the Hub token --------------------------------------------------------------------


def test_settings_hf_token_from_env_is_secret(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    settings = load_settings()
    assert isinstance(settings.hub.token, SecretStr)
    assert settings.hub.token.get_secret_value() == TOKEN
    dumped = settings.masked_dump()
    assert dumped["hub"]["token"] == "**********"
    for text in (json.dumps(dumped), str(settings), repr(settings), str(dumped), settings.without_secrets_json()):
        assert TOKEN not in text
    assert settings.without_secrets().hub.token is None


def test_settings_vaseg_hf_token_beats_hf_token(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("VASEG_HF_TOKEN", "hf_other")
    assert load_settings().hub.token.get_secret_value() == "hf_other"


def test_settings_masked_dump_without_token_is_json_ready():
    dumped = load_settings().masked_dump()
    assert dumped["hub"]["token"] is None
    assert dumped["raw"]["dir"] == "openeds_raw"
    assert set(dumped) == set(Settings.model_fields)
    json.dumps(dumped)


def test_settings_error_never_shows_token(clean_env, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with pytest.raises(VasegError) as caught:
        load_settings(train={"epochs": 0})
    assert TOKEN not in str(caught.value)
    assert TOKEN not in caught.value.message


@pytest.mark.parametrize(
    ("text", "named"),
    [('hf_token = "{}"', "hf_token"), ('HF_TOKEN = "{}"', "HF_TOKEN"), ('VASEG_HF_TOKEN = "{}"', "VASEG_HF_TOKEN"),
     ('[hub]\ntoken = "{}"', "[hub] token")],
)  # fmt: skip
def test_settings_hf_token_in_toml_is_refused_without_echo(clean_env, text, named):
    write_toml(clean_env / "vaseg.toml", text.format(TOKEN) + "\n")
    with pytest.raises(VasegError) as caught:
        load_settings()
    assert caught.value.exit_code == 2
    message = caught.value.message
    assert named in message and "vaseg.toml" in message
    assert "HF_TOKEN" in message and "hf auth login" in message
    assert TOKEN not in str(caught.value) and TOKEN[:8] not in message


def test_settings_hf_token_env_is_still_accepted_beside_a_toml(clean_env, monkeypatch):
    write_toml(clean_env / "vaseg.toml", "[train]\nepochs = 3\n")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert load_settings().hub.token.get_secret_value() == TOKEN


@pytest.mark.parametrize("key", ["kaggle_kee", "hf_tokn", "modal_secret_value", "epoch", "anything", "[modal]\nsecret"])
def test_settings_unknown_key_never_echoes_its_value(clean_env, key):
    config = write_toml(clean_env / "run.toml", f'{key} = "{TOKEN}"\n')
    with pytest.raises(VasegError) as caught:
        load_settings(config)
    assert caught.value.exit_code == 2
    assert key.rpartition("\n")[2] in caught.value.message and str(config) in caught.value.message
    assert TOKEN not in str(caught.value) and TOKEN[:8] not in caught.value.message


def test_settings_unknown_key_suggests_the_near_field(clean_env):
    write_toml(clean_env / "vaseg.toml", "[train]\nbatch_sise = 4\n")
    with pytest.raises(VasegError, match=r"did you mean \[train\] batch_size"):
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
        ({"train": {"device": "meta"}}, "[train] device"),
        ({"train": {"device": "tpu"}}, "[train] device"),
        ({"train": {"device": "cuda:x"}}, "[train] device"),
        ({"train": {"device": "CPU "}}, "[train] device"),
        ({"train": {"lr": float("inf")}}, "[train] lr"),
        ({"train": {"lr": float("nan")}}, "[train] lr"),
        ({"train": {"dropout": float("nan")}}, "[train] dropout"),
    ],
)
def test_settings_invalid_seed_device_and_non_finite_floats_are_usage_errors(overrides, field):
    with pytest.raises(VasegError) as caught:
        load_settings(**overrides)
    assert caught.value.exit_code == 2
    assert f"{field}=" in caught.value.message


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"])
def test_settings_accepts_every_documented_device(device):
    assert load_settings(train={"device": device}).train.device == device


def test_settings_invalid_env_device_is_one_paragraph(monkeypatch):
    monkeypatch.setenv("VASEG_TRAIN__DEVICE", "meta")
    with pytest.raises(VasegError) as caught:
        load_settings()
    assert caught.value.exit_code == 2
    assert "auto, cpu, cuda, cuda:N" in caught.value.message and "\n" not in caught.value.message


def test_settings_invalid_token_override_is_not_echoed():
    with pytest.raises(VasegError) as caught:
        load_settings(hub={"token": 987654321})
    assert "[hub] token" in caught.value.message
    assert "987654321" not in str(caught.value)


def test_updated_counts_the_changed_fields_as_given():
    settings = load_settings().updated(seed=4, train={"epochs": 2})
    assert (settings.seed, settings.train.epochs, settings.train.batch_size) == (4, 2, 32)
    assert "seed" in settings.model_fields_set and "epochs" in settings.train.model_fields_set
    assert "batch_size" not in settings.train.model_fields_set
