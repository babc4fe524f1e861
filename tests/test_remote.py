"""Tests of the Modal app definition and the ``--remote`` dispatch, with Modal replaced at its boundary."""

from __future__ import annotations

import json
from contextlib import contextmanager, nullcontext
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from unittest import mock

import pytest
from hypothesis import given
from pydantic import SecretStr
from hypothesis import strategies as st

modal = pytest.importorskip("modal")

from visionassist_seg.errors import VasegError  # noqa: E402
from visionassist_seg.remote import app as remote_app  # noqa: E402
from visionassist_seg.remote import dispatch, jobs  # noqa: E402
from visionassist_seg.remote.credentials import check_modal_credentials  # noqa: E402
from visionassist_seg.remote.volume import read_snapshot  # noqa: E402
from visionassist_seg.settings import Settings  # noqa: E402


# --- helpers -------------------------------------------------------------------------


@pytest.fixture
def modal_token(monkeypatch, tmp_path):
    """Fake Modal credentials in the environment (never real ones)."""
    monkeypatch.setenv("MODAL_TOKEN_ID", "ak-test")
    monkeypatch.setenv("MODAL_TOKEN_SECRET", "as-test")
    monkeypatch.setenv("MODAL_CONFIG_PATH", str(tmp_path / "absent.toml"))


@pytest.fixture
def no_modal_token(monkeypatch, tmp_path):
    monkeypatch.delenv("MODAL_TOKEN_ID", raising=False)
    monkeypatch.delenv("MODAL_TOKEN_SECRET", raising=False)
    monkeypatch.setenv("MODAL_CONFIG_PATH", str(tmp_path / "absent.toml"))
    return tmp_path / "absent.toml"


class FakeVolume:
    """A Modal Volume backed by a local folder: the client calls vaseg makes, nothing else."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uploads: list[tuple[str, str]] = []

    def hydrate(self):
        return self

    def listdir(self, key, recursive=False):
        from modal.exception import NotFoundError
        from modal.volume import FileEntry, FileEntryType

        base = self.root / key
        if not base.exists():
            raise NotFoundError(f"No such file or directory: {key}")
        paths = base.rglob("*") if recursive else base.iterdir()
        return [
            FileEntry(
                path=path.relative_to(self.root).as_posix(),
                type=FileEntryType.FILE if path.is_file() else FileEntryType.DIRECTORY,
                mtime=0,
                size=path.stat().st_size if path.is_file() else 0,
            )
            for path in sorted(paths)
        ]

    def read_file(self, key):
        from modal.exception import NotFoundError

        path = self.root / key
        if not path.is_file():
            raise NotFoundError(f"No such file: {key}")
        data = path.read_bytes()
        yield data[:3]
        yield data[3:]

    @contextmanager
    def batch_upload(self, force=False):
        import shutil

        volume = self

        class Batch:
            def put_directory(self, local, key):
                volume.uploads.append((str(local), key))
                shutil.copytree(local, volume.root / key, dirs_exist_ok=True)

            def put_file(self, local, key):
                volume.uploads.append((str(local), key))
                (volume.root / key).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(local, volume.root / key)

        yield Batch()

    def write(self, key: str, data: bytes) -> None:
        (self.root / key).parent.mkdir(parents=True, exist_ok=True)
        (self.root / key).write_bytes(data)


@pytest.fixture
def fake_modal(monkeypatch, tmp_path, modal_token):
    """Build the real app, then replace the Volume and the run/call boundary with recording fakes."""
    volume = FakeVolume(tmp_path / "volume")
    volume.root.mkdir()
    state = SimpleNamespace(volume=volume, calls=[], app_runs=[], behaviour={})
    real_build = remote_app.build_app

    def build(settings, **kwargs):
        built = real_build(settings, **kwargs)
        state.built = built
        built.volume = volume
        return built

    def run(self, **kwargs):
        state.app_runs.append(kwargs)
        return nullcontext(self)

    def job_of(function) -> str:
        return next(f"{job}_job" for job, known in state.built.functions.items() if known is function)

    def remote(self, *args, **kwargs):
        job = job_of(self)
        state.calls.append(("remote", job, args, kwargs))
        return state.behaviour[job](*args, **kwargs)

    def spawn(self, *args, **kwargs):
        state.calls.append(("spawn", job_of(self), args, kwargs))
        return SimpleNamespace(object_id="fc-test123")

    def map_(self, *iterables, kwargs={}, **options):
        job = job_of(self)
        inputs = list(zip(*iterables))
        state.calls.append(("map", job, inputs, kwargs))
        return [state.behaviour[job](*args, **kwargs) for args in inputs]

    monkeypatch.setattr(dispatch, "check_modal_reachable", lambda: None)  # no Modal server in tests
    monkeypatch.setattr(dispatch, "build_app", build, raising=False)
    monkeypatch.setattr(remote_app, "build_app", build)
    monkeypatch.setattr(modal.App, "run", run)
    monkeypatch.setattr(modal, "enable_output", nullcontext)
    monkeypatch.setattr(modal.Function, "remote", remote)
    monkeypatch.setattr(modal.Function, "spawn", spawn)
    monkeypatch.setattr(modal.Function, "map", map_)
    return state


@pytest.fixture
def fetch_volume(fake_modal, monkeypatch):
    """`vaseg fetch` looks the Volume up by name itself: hand it the fake."""
    names = []

    def from_name(name, **kwargs):
        names.append(name)
        return fake_modal.volume

    monkeypatch.setattr(modal.Volume, "from_name", from_name)
    fake_modal.volume.names = names
    return fake_modal.volume


def _payload(call) -> dict:
    return json.loads(call[2][0])


# --- credentials ---------------------------------------------------------------------


def test_credentials_missing_names_setup_commands(no_modal_token):
    with pytest.raises(VasegError) as err:
        check_modal_credentials()
    assert err.value.exit_code == 1
    assert "modal setup" in err.value.message and "modal token new" in err.value.message
    assert str(no_modal_token) in err.value.message


def test_credentials_half_set_env_is_missing(no_modal_token, monkeypatch):
    monkeypatch.setenv("MODAL_TOKEN_ID", "ak-only-id")
    with pytest.raises(VasegError, match="only one of MODAL_TOKEN_ID") as err:
        check_modal_credentials()
    assert "ak-only-id" not in err.value.message


def test_credentials_from_config_file(no_modal_token):
    no_modal_token.write_text('[default]\ntoken_id = "ak-x"\ntoken_secret = "as-y"\n')
    check_modal_credentials()


def test_credentials_config_file_without_token(no_modal_token):
    no_modal_token.write_text('[default]\nloglevel = "DEBUG"\n')
    with pytest.raises(VasegError, match="modal setup"):
        check_modal_credentials()


def test_train_remote_without_credentials_builds_nothing(no_modal_token, monkeypatch):
    built = mock.Mock(side_effect=AssertionError("build_app must not run without credentials"))
    monkeypatch.setattr(remote_app, "build_app", built)
    with pytest.raises(VasegError, match="modal token new"):
        dispatch.train_remote(Settings())
    with pytest.raises(VasegError, match="modal token new"):
        dispatch.precompute_remote(Settings())
    built.assert_not_called()


@pytest.fixture
def modal_env_clean(monkeypatch, tmp_path):
    """No MODAL_* credential or profile variables; the config file path points into tmp_path (absent)."""
    for name in ("TOKEN_ID", "TOKEN_SECRET", "PROFILE", "OAUTH_REFRESH_TOKEN", "OAUTH_CLIENT_ID",
                 "OAUTH_CLIENT_SECRET", "OAUTH_JWT_KEY"):
        monkeypatch.delenv(f"MODAL_{name}", raising=False)
    config = tmp_path / "modal.toml"
    monkeypatch.setenv("MODAL_CONFIG_PATH", str(config))
    return config


@pytest.mark.parametrize("secret", ["MODAL_OAUTH_CLIENT_SECRET", "MODAL_OAUTH_JWT_KEY"])
def test_credentials_oauth_environment_is_accepted(modal_env_clean, monkeypatch, secret):
    monkeypatch.setenv("MODAL_OAUTH_REFRESH_TOKEN", "rt-test")
    monkeypatch.setenv("MODAL_OAUTH_CLIENT_ID", "client-test")
    monkeypatch.setenv(secret, "secret-test")
    check_modal_credentials()


def test_credentials_oauth_profile_keys_are_accepted(modal_env_clean):
    modal_env_clean.write_text(
        '[work]\nactive = true\noauth_refresh_token = "rt"\noauth_client_id = "cid"\noauth_client_secret = "cs"\n'
    )
    check_modal_credentials()


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"MODAL_OAUTH_REFRESH_TOKEN": "rt", "MODAL_OAUTH_CLIENT_ID": "cid"}, "OAuth credentials are incomplete"),
        ({"MODAL_OAUTH_REFRESH_TOKEN": "rt", "MODAL_OAUTH_CLIENT_ID": "cid", "MODAL_OAUTH_CLIENT_SECRET": "cs",
          "MODAL_OAUTH_JWT_KEY": "jk"}, "OAuth credentials are incomplete"),
        ({"MODAL_TOKEN_ID": "ak", "MODAL_TOKEN_SECRET": "as", "MODAL_OAUTH_REFRESH_TOKEN": "rt"}, "refuses to combine"),
    ],
    ids=["no-secret", "two-secrets", "token-and-oauth"],
)
def test_credentials_that_modal_would_refuse_are_named(modal_env_clean, monkeypatch, variables, expected):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(VasegError, match=expected) as err:
        check_modal_credentials()
    assert not any(value in err.value.message for value in ("rt", "cid", "cs", "jk") if len(value) > 2)


def test_credentials_come_from_the_active_profile_only(modal_env_clean, monkeypatch):
    modal_env_clean.write_text('[old]\ntoken_id = "ak"\ntoken_secret = "as"\n[work]\nactive = true\n')
    with pytest.raises(VasegError, match="profile 'work'"):
        check_modal_credentials()
    monkeypatch.setenv("MODAL_PROFILE", "old")
    check_modal_credentials()


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:  # free a moment ago: nothing listens there now
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_modal_server_fails_with_one_paragraph(modal_token, monkeypatch, tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("MODAL_SERVER_URL", url)
    built = mock.Mock(side_effect=AssertionError("nothing may be built when Modal is unreachable"))
    monkeypatch.setattr(remote_app, "build_app", built)
    for call in (lambda: dispatch.fetch_run(Settings(), "exp"), lambda: dispatch.train_remote(Settings()),
                 lambda: dispatch.precompute_remote(Settings())):
        with pytest.raises(VasegError) as err:
            call()
        assert f"Cannot reach the Modal server at {url}" in err.value.message
        assert "status.modal.com" in err.value.message and "ak-test" not in err.value.message
    built.assert_not_called()


def test_connection_lost_after_the_check_is_one_paragraph_too(fetch_volume, monkeypatch):
    from modal.exception import ConnectionError as ModalConnectionError

    monkeypatch.setattr(fetch_volume, "listdir", mock.Mock(side_effect=ModalConnectionError("gave up")))
    with pytest.raises(VasegError, match="Cannot reach the Modal server"):
        dispatch.fetch_run(Settings(), "exp")


def test_fetch_from_a_missing_volume_names_the_volume_not_secrets(fake_modal, monkeypatch):
    from modal.exception import NotFoundError

    missing = mock.Mock()
    missing.hydrate.side_effect = NotFoundError("Volume 'gone' not found in environment 'main'")
    monkeypatch.setattr(modal.Volume, "from_name", lambda name, **kwargs: missing)
    with pytest.raises(VasegError) as err:
        dispatch.fetch_run(Settings(modal={"volume": "gone"}), "exp")
    assert "Modal Volume 'gone' does not exist" in err.value.message and "modal volume list" in err.value.message
    assert "secret" not in err.value.message.lower()
    missing.listdir.assert_not_called()


# --- app definition ------------------------------------------------------------------


def test_train_function_definition(monkeypatch):
    real_function = modal.App.function
    decorations = []

    def spy(self, **kwargs):
        decorations.append(kwargs)
        return real_function(self, **kwargs)

    real_add_source = modal.Image.add_local_python_source
    shipped = []

    def add_source(self, *modules, **kwargs):
        shipped.append(modules)
        return real_add_source(self, *modules, **kwargs)

    monkeypatch.setattr(modal.App, "function", spy)
    monkeypatch.setattr(modal.Image, "add_local_python_source", add_source)
    settings = Settings(modal={"gpu": "H100", "timeout": 7200, "cpu": 4.0, "memory": 16384, "volume": "vol-x", "hf_secret": "hf-x", "mlflow_secret": "mlflow-x"})
    remote = remote_app.build_app(settings)

    assert list(remote.functions) == ["train"]
    assert remote.app.name == settings.modal.app_name
    (options,) = decorations
    assert options["gpu"] == "H100" and options["timeout"] == 7200
    assert options["cpu"] == 4.0 and options["memory"] == 16384
    assert options["volumes"] == {"/vol": remote.volume}
    assert [repr(secret) for secret in options["secrets"]] == [
        "modal.Secret.from_name('hf-x')",
        "modal.Secret.from_name('mlflow-x')",
    ]
    assert repr(remote.volume) == "modal.Volume.from_name('vol-x')"
    assert options["include_source"] is False
    # The image ships the local package source: the container runs exactly this code.
    assert shipped == [("visionassist_seg",)]
    assert isinstance(options["image"], modal.Image)


@pytest.fixture
def declared_requirements(monkeypatch):
    """The package's requirements as this checkout's pyproject.toml declares them (not an older install's metadata)."""
    import tomllib
    from importlib import metadata

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"]) + [
        f'{requirement}; extra == "{extra}"'
        for extra, requirements in project["optional-dependencies"].items()
        for requirement in requirements
    ]
    real = metadata.requires
    monkeypatch.setattr(metadata, "requires", lambda name: declared if name == remote_app.DISTRIBUTION else real(name))
    return declared


def test_train_image_recipe_pins_local_versions_with_cuda_torch(declared_requirements):
    from importlib import metadata

    recipe = remote_app.image_recipe(Settings(), gpu=True)
    names = {requirement.split("==")[0].split(">=")[0].lower() for requirement in recipe.pip_packages}
    assert recipe.python_version == "3.11"
    assert recipe.local_python_sources == ("visionassist_seg",)
    assert "torch" in names and "modal" not in names and "mlflow" not in names
    torch_pin = next(r for r in recipe.pip_packages if r.startswith("torch=="))
    assert "+" not in torch_pin  # a local "+cpu" label would pull a CPU build
    assert torch_pin == f"torch=={metadata.version('torch').split('+')[0]}"
    assert recipe.apt_packages == ()


def test_cpu_image_has_no_torch_and_compile_adds_compiler(declared_requirements):
    cpu = remote_app.image_recipe(Settings(), gpu=False)
    assert not any(r.startswith(("torch", "matplotlib")) for r in cpu.pip_packages)
    assert any(r.startswith("onnxruntime") for r in cpu.pip_packages)
    assert any(r.startswith("pyarrow") for r in cpu.pip_packages)
    gpu = remote_app.image_recipe(Settings(train={"compile": True}, modal={"mlflow_secret": "m"}), gpu=True)
    assert gpu.apt_packages == ("build-essential",)
    assert "mlflow>=2.10" in gpu.pip_packages


def test_train_image_gets_the_train_extra_and_pins_torch_without_a_local_torch(declared_requirements, monkeypatch):
    from importlib import metadata

    assert any(r.startswith("torch") and 'extra == "train"' in r for r in declared_requirements)
    real = metadata.version

    def version(name):
        if name in ("torch", "matplotlib"):  # a core install: the train extra is not here
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "version", version)
    gpu = remote_app.image_recipe(Settings(), gpu=True).pip_packages
    assert f"torch=={remote_app.TORCH_VERSION}" in gpu
    assert any(r.startswith("matplotlib>=") for r in gpu)
    assert not any(r.startswith(("pytest", "hypothesis", "mlflow", "visionassist")) for r in gpu)


def test_torch_version_is_the_one_the_install_commands_use():
    root = Path(__file__).parents[1]
    pin = f"torch=={remote_app.TORCH_VERSION}"
    assert pin in (root / "README.md").read_text()
    assert pin in (root / ".ci" / "run").read_text()


@pytest.mark.parametrize(
    ("source", "push", "expected"),
    [
        ("kaggle", True, {"prepare": ("kaggle",), "write_shards": (), "finalize": ("huggingface",)}),
        ("synthetic", False, {"prepare": (), "write_shards": (), "finalize": ()}),
    ],
)
def test_precompute_functions_attach_only_needed_secrets(source, push, expected):
    settings = Settings(raw={"source": source})
    remote = remote_app.build_app(settings, command="precompute", push=push)
    assert list(remote.functions) == ["prepare", "write_shards", "finalize"]
    for job, secrets in expected.items():
        options = remote_app.function_options(settings, job, push=push)
        assert options.secrets == secrets
        assert options.gpu is None and options.image == "cpu"


# --- settings payload ----------------------------------------------------------------


def test_settings_payload_leaves_out_secrets_and_round_trips(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    settings = Settings(hub={"token": "hf_secret_value"}, train={"epochs": 3}, modal={"gpu": "A100"})
    payload = dispatch.settings_payload(settings, train={"run_dir": PurePosixPath("/vol/runs/x")})
    assert "hf_secret_value" not in payload and "token" not in json.loads(payload)["hub"]
    back = jobs.settings_from_payload(payload)
    assert back.train.epochs == 3 and back.modal.gpu == "A100" and back.train.run_dir == Path("/vol/runs/x")
    assert back.hub.token is None
    monkeypatch.setenv("HF_TOKEN", "from_modal_secret")
    assert jobs.settings_from_payload(payload).hub.token.get_secret_value() == "from_modal_secret"
    with pytest.raises(ValueError, match="run_dri"):
        dispatch.settings_payload(settings, train={"run_dri": "/x"})


# --- shard fan-out -------------------------------------------------------------------


@given(st.integers(0, 300), st.integers(1, 64))
def test_split_shard_ranges_disjoint_and_covering(n_shards, n_workers):
    ranges = dispatch.split_shard_ranges(n_shards, n_workers)
    indices = [i for r in ranges for i in r]
    assert indices == list(range(n_shards))  # every shard once, in order
    assert len(ranges) == min(n_shards, n_workers)
    assert all(len(r) > 0 for r in ranges)
    if ranges:
        assert max(map(len, ranges)) - min(map(len, ranges)) <= 1


def test_split_shard_ranges_examples():
    assert dispatch.split_shard_ranges(5, 2) == [range(0, 3), range(3, 5)]
    assert dispatch.split_shard_ranges(2, 8) == [range(0, 1), range(1, 2)]
    assert dispatch.split_shard_ranges(0, 3) == []
    with pytest.raises(ValueError):
        dispatch.split_shard_ranges(3, 0)


# --- train --remote dispatch ---------------------------------------------------------


def _write_dataset(folder: Path) -> Path:
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "train-00000-of-00001.parquet").write_bytes(b"shard")
    (folder / "data" / "validation-00000-of-00001.parquet").write_bytes(b"shard")
    (folder / "manifest.json").write_text(json.dumps({"format": "vaseg-precomputed", "version": 1}))
    return folder


def _fake_training(volume: FakeVolume):
    def train(payload, dataset_from_hub):
        run = PurePosixPath(json.loads(payload)["train"]["run_dir"]).relative_to("/vol")
        volume.write(f"{run}/checkpoints/last.pt", b"weights")
        volume.write(f"{run}/model.onnx", b"onnx")
        volume.write(f"{run}/metrics.json", b'{"pupil_iou": 0.9}')
        volume.write(f"{run}/remote.json", b'{"status": "finished"}')
        return {"status": "finished"}

    return train


def test_train_remote_sends_settings_and_copies_run_back(fake_modal, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dataset = _write_dataset(tmp_path / "precomputed")
    fake_modal.behaviour["train_job"] = _fake_training(fake_modal.volume)
    settings = Settings(hub={"token": "hf_never_sent"}, train={"run_dir": tmp_path / "runs" / "exp1", "epochs": 2, "device": "cpu"}, dataset={"dir": dataset}, modal={"gpu": "H100"})

    result = dispatch.train_remote(settings)

    assert result == tmp_path / "runs" / "exp1"
    assert (result / "checkpoints" / "last.pt").read_bytes() == b"weights"
    assert (result / "model.onnx").read_bytes() == b"onnx"
    assert json.loads((result / "metrics.json").read_text()) == {"pupil_iou": 0.9}
    assert not list(result.rglob("*.part"))
    (call,) = fake_modal.calls
    assert call[:2] == ("remote", "train_job")
    sent = _payload(call)
    assert sent["train"]["run_dir"] == "/vol/runs/exp1"
    assert sent["dataset"]["dir"] == "/vol/datasets/local/precomputed"
    assert sent["train"]["source"] == "local" and sent["train"]["device"] == "cuda"
    assert sent["train"]["epochs"] == 2 and sent["modal"]["gpu"] == "H100"
    assert "token" not in sent["hub"] and "hf_never_sent" not in call[2][0]
    assert call[2][1] is False  # dataset uploaded, not fetched from the Hub
    assert fake_modal.app_runs == [{"detach": False}]
    assert fake_modal.volume.uploads == [(str(dataset), "datasets/local/precomputed")]


def test_train_remote_reuses_uploaded_dataset(fake_modal, tmp_path):
    dataset = _write_dataset(tmp_path / "precomputed")
    fake_modal.behaviour["train_job"] = _fake_training(fake_modal.volume)
    settings = Settings(train={"run_dir": tmp_path / "runs" / "a"}, dataset={"dir": dataset})
    dispatch.train_remote(settings)
    dispatch.train_remote(settings)
    assert len(fake_modal.volume.uploads) == 1  # same manifest on the Volume: no second upload


def test_train_remote_hub_dataset_and_resume(fake_modal, tmp_path):
    checkpoint = tmp_path / "old" / "last.pt"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"ckpt")
    fake_modal.behaviour["train_job"] = _fake_training(fake_modal.volume)
    settings = Settings(train={"run_dir": tmp_path / "runs" / "b", "source": "hub", "resume": checkpoint}, hub={"repo": "me/eyes", "revision": "v2"})
    dispatch.train_remote(settings)
    (call,) = fake_modal.calls
    sent = _payload(call)
    assert sent["dataset"]["dir"] == "/vol/datasets/hub/me/eyes/v2"
    assert sent["train"]["resume"] == "/vol/uploads/b/last.pt"
    assert call[2][1] is True
    assert (fake_modal.volume.root / "uploads" / "b" / "last.pt").read_bytes() == b"ckpt"


def test_train_remote_uploads_init_from_weights(fake_modal, tmp_path):
    weights = tmp_path / "old" / "seed.onnx"
    weights.parent.mkdir()
    weights.write_bytes(b"onnx")
    fake_modal.behaviour["train_job"] = _fake_training(fake_modal.volume)
    dispatch.train_remote(Settings(train={"run_dir": tmp_path / "runs" / "c", "source": "hub", "init_from": weights}))
    (call,) = fake_modal.calls
    assert _payload(call)["train"]["init_from"] == "/vol/uploads/c/seed.onnx"
    assert (fake_modal.volume.root / "uploads" / "c" / "seed.onnx").read_bytes() == b"onnx"


def test_train_remote_detach_spawns_and_returns_name(fake_modal, tmp_path, capsys):
    settings = Settings(train={"run_dir": tmp_path / "runs" / "night-run", "source": "hub"})
    result = dispatch.train_remote(settings, detach=True)
    assert result == "night-run"
    (call,) = fake_modal.calls
    assert call[:2] == ("spawn", "train_job")
    assert fake_modal.app_runs == [{"detach": True}]
    assert not (tmp_path / "runs" / "night-run").exists()  # nothing copied back yet
    out = capsys.readouterr().out
    assert "vaseg fetch night-run" in out and "fc-test123" in out


def test_train_remote_rejects_bad_run_name_and_empty_dataset(fake_modal, tmp_path):
    with pytest.raises(VasegError, match="cannot name a folder"):
        dispatch.train_remote(Settings(train={"run_dir": Path("runs") / "bad name"}))
    (tmp_path / "empty").mkdir()
    with pytest.raises(VasegError, match="no parquet shards"):
        dispatch.train_remote(Settings(train={"run_dir": tmp_path / "r", "source": "local"}, dataset={"dir": tmp_path / "empty"}))
    assert fake_modal.calls == []


# --- precompute --remote dispatch ----------------------------------------------------


def test_precompute_remote_fans_out_disjoint_groups(fake_modal):
    tasks = [f"task{i}" for i in range(7)]
    fake_modal.behaviour["prepare_job"] = lambda payload, force_download: tasks
    fake_modal.behaviour["write_shards_job"] = lambda group, payload: [f"result-{t}" for t in group]
    fake_modal.behaviour["finalize_job"] = lambda payload, t, r, push, seconds: {"tasks": t, "results": r, "push": push}
    settings = Settings(workers=3, seed=1, raw={"source": "synthetic", "synthetic_count": 8}, hub={"repo": "me/eyes"})

    report = dispatch.precompute_remote(settings, push=False)

    kinds = [(kind, job) for kind, job, *_ in fake_modal.calls]
    assert kinds == [("remote", "prepare_job"), ("map", "write_shards_job"), ("remote", "finalize_job")]
    groups = [args[0] for args in fake_modal.calls[1][2]]
    assert groups == [tasks[0:3], tasks[3:5], tasks[5:7]]
    assert report == {"tasks": tasks, "results": [f"result-{t}" for t in tasks], "push": False}
    sent = _payload(fake_modal.calls[0])
    assert sent["raw"]["dir"] == "/vol/raw/synthetic/count8-seed1"
    assert sent["dataset"]["dir"] == "/vol/datasets/hub/me/eyes/main"
    assert fake_modal.calls[1][3] == {"payload": fake_modal.calls[0][2][0]}
    assert fake_modal.built.functions.keys() == {"prepare", "write_shards", "finalize"}


def test_precompute_remote_force_download_reaches_the_remote_download(fake_modal):
    fake_modal.behaviour["prepare_job"] = lambda payload, force_download: []
    fake_modal.behaviour["finalize_job"] = lambda payload, t, r, push, seconds: None
    dispatch.precompute_remote(Settings(raw={"source": "synthetic"}), push=False, force_download=True)
    assert fake_modal.calls[0][:2] == ("remote", "prepare_job") and fake_modal.calls[0][2][1] is True


def test_prepare_job_replaces_a_partial_raw_download_when_forced(tmp_path, monkeypatch):
    from visionassist_seg import kaggle

    raw = tmp_path / "volume" / "raw"
    settings = Settings(raw={"dir": raw, "source": "kaggle"}, dataset={"dir": tmp_path / "volume" / "d", "shard_size": 4})
    (raw / "openEDS.zip").parent.mkdir(parents=True)
    (raw / "openEDS.zip").write_bytes(b"partial")  # what an interrupted download leaves
    forced = []

    def fake_ensure_raw(settings, *, force=False):
        from visionassist_seg.data.synthetic import write_synthetic_raw

        forced.append(force)
        if not force:  # what kagglehub does with a non-empty folder lacking its completion marker
            raise kaggle.download_error(FileExistsError("output_dir is not empty"), settings.raw.kaggle_dataset, raw)
        return write_synthetic_raw(raw, 8, seed=0)

    monkeypatch.setattr(kaggle, "ensure_raw", fake_ensure_raw)
    payload = dispatch.settings_payload(settings)
    with pytest.raises(VasegError, match="--force-download"):
        jobs.prepare_job(payload)
    assert jobs.prepare_job(payload, True) and forced == [False, True]


# --- fetch ---------------------------------------------------------------------------


def test_fetch_run_copies_and_reports_status(fetch_volume, tmp_path):
    fetch_volume.write("runs/r1/last.pt", b"abcdef")
    fetch_volume.write("runs/r1/plots/loss.png", b"png")
    fetch_volume.write("runs/r1/remote.json", b'{"status": "running"}')
    result = dispatch.fetch_run(Settings(train={"run_dir": tmp_path / "runs" / "x"}, modal={"volume": "v2"}), "r1")
    assert fetch_volume.names == ["v2"]
    assert result.run_dir == tmp_path / "runs" / "r1"
    assert (result.run_dir / "last.pt").read_bytes() == b"abcdef"
    assert (result.run_dir / "plots" / "loss.png").read_bytes() == b"png"
    assert result.status == {"status": "running"}
    assert sorted(p.name for p in result.files) == ["last.pt", "loss.png", "remote.json"]


def test_fetch_run_unknown_name(fetch_volume, tmp_path):
    with pytest.raises(VasegError, match="No run 'nope' on Modal Volume vaseg-data"):
        dispatch.fetch_run(Settings(), "nope", tmp_path / "out")


# --- the remote function bodies, run here ---------------------------------------------


def test_download_hub_dataset_targets_volume_folder(monkeypatch, tmp_path):
    import huggingface_hub
    from huggingface_hub.errors import RepositoryNotFoundError

    settings = Settings(hub={"repo": "me/eyes", "revision": "v1", "token": "hf_abc"})
    with mock.patch("visionassist_seg.hub.download_dataset") as download:
        jobs.download_hub_dataset(settings, tmp_path / "cache")
    download.assert_called_once_with("me/eyes", "v1", local_dir=tmp_path / "cache", token="hf_abc")

    def missing(self, repo, **kwargs):
        raise RepositoryNotFoundError("404 Client Error", response=mock.Mock(status_code=404, headers={}))

    monkeypatch.setattr(huggingface_hub.HfApi, "resolve_revision", missing)
    with pytest.raises(VasegError, match="me/eyes"):
        jobs.download_hub_dataset(settings, tmp_path / "cache")


def _shard_rows(manifest: dict) -> dict:
    return {split: [(shard["file"], shard["rows"]) for shard in info["shards"]]
            for split, info in manifest["splits"].items()}


def _files(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}


LOCAL_CALL = pytest.mark.filterwarnings("ignore:The .* function is executing locally")
TINY = dict(
    seed=3, workers=1, raw={"source": "synthetic", "synthetic_count": 8}, dataset={"shard_size": 4}, modal={"cpu": 1.0},
    train={"epochs": 1, "batch_size": 2, "scale": 0.2, "device": "cpu", "source": "local", "compile": False},
)


def _tiny(**sections) -> Settings:
    """TINY's settings with ``sections`` merged in (``dataset={"dir": ...}``)."""
    return Settings(**{**TINY, **{name: {**TINY.get(name, {}), **values} for name, values in sections.items()}})


@LOCAL_CALL
def test_remote_precompute_bodies_match_local_precompute(tmp_path, monkeypatch):
    """Download, shard fan-out and finalize through the functions' ``.local`` give `vaseg precompute`'s dataset."""
    import numpy as np

    from visionassist_seg.pipeline.precompute import run_precompute
    from visionassist_seg.data.reader import read_batches

    monkeypatch.chdir(tmp_path)
    volume = tmp_path / "volume"
    remote_settings = _tiny(raw={"dir": volume / "raw"}, dataset={"dir": volume / "datasets" / "d"})
    local_settings = _tiny(raw={"dir": tmp_path / "raw"}, dataset={"dir": tmp_path / "out"})
    payload = dispatch.settings_payload(remote_settings)

    functions = remote_app.build_app(remote_settings, command="precompute", push=False).functions
    tasks = functions["prepare"].local(payload)
    groups = dispatch.shard_groups(tasks, 2)
    assert [len(group) for group in groups] == [2, 1]
    results = [result for group in groups for result in functions["write_shards"].local(group, payload)]
    report = functions["finalize"].local(payload, tasks, results, False, 1.0)
    local_report = run_precompute(local_settings, progress=False)

    assert report.rows == local_report.rows == {"train": 8, "validation": 2}
    assert report.shards == local_report.shards
    remote_manifest = json.loads((volume / "datasets" / "d" / "manifest.json").read_text())
    local_manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert _shard_rows(remote_manifest) == _shard_rows(local_manifest)
    assert (volume / "datasets" / "d" / "README.md").is_file()
    remote_batch = next(read_batches(volume / "datasets" / "d" / "data" / "train-00001-of-00002.parquet"))
    local_batch = next(read_batches(tmp_path / "out" / "data" / "train-00001-of-00002.parquet"))
    assert remote_batch["filename"] == local_batch["filename"]
    np.testing.assert_array_equal(remote_batch["image"], local_batch["image"])
    np.testing.assert_array_equal(remote_batch["label"], local_batch["label"])
    # Not bit-exact: two local precompute runs already differ in float32 rounding of dist_map.
    np.testing.assert_allclose(remote_batch["dist_map"], local_batch["dist_map"], atol=1e-6)

    # A second remote run reuses the raw data on the Volume and resumes the finished shards.
    assert [task.name for task in functions["prepare"].local(payload)] == [task.name for task in tasks]
    assert all(result.resumed for result in functions["write_shards"].local(tasks, payload))


@pytest.mark.slow
@LOCAL_CALL
def test_remote_train_body_matches_local_training(tmp_path, monkeypatch):
    """The training function's body, run here, leaves the same run folder as `vaseg train` plus remote.json."""
    from visionassist_seg.pipeline.precompute import run_precompute
    from visionassist_seg.train.loop import train

    monkeypatch.chdir(tmp_path)
    dataset = tmp_path / "out"
    run_precompute(_tiny(raw={"dir": tmp_path / "raw"}, dataset={"dir": dataset}), progress=False)
    remote_settings = _tiny(dataset={"dir": dataset}, train={"run_dir": tmp_path / "volume" / "runs" / "exp"})
    local_settings = _tiny(dataset={"dir": dataset}, train={"run_dir": tmp_path / "runs" / "exp"})

    record = remote_app.build_app(remote_settings).functions["train"].local(
        dispatch.settings_payload(remote_settings), False
    )
    train(local_settings, progress=False)

    assert record["status"] == "finished" and record["result"]["epochs_run"] == 1
    remote_run, local_run = remote_settings.train.run_dir, local_settings.train.run_dir
    assert _files(remote_run) == _files(local_run) | {"remote.json"}
    assert json.loads((remote_run / "remote.json").read_text()) == record
    header = (local_run / "metrics.csv").read_text().splitlines()[0]
    assert (remote_run / "metrics.csv").read_text().splitlines()[0] == header


@LOCAL_CALL
def test_remote_train_body_records_failure(tmp_path, monkeypatch):
    from visionassist_seg.train import loop

    def broken(settings, progress=True):
        raise VasegError("Dataset folder x does not exist.")

    monkeypatch.setattr(loop, "train", broken)
    settings = Settings(train={"run_dir": tmp_path / "runs" / "bad", "source": "local"}, dataset={"dir": tmp_path / "none"})
    with pytest.raises(VasegError):
        jobs.train_job(dispatch.settings_payload(settings), False)
    status = json.loads((tmp_path / "runs" / "bad" / "remote.json").read_text())
    assert status["status"] == "failed" and "does not exist" in status["error"]


# --- the CLI, Modal replaced at its boundary -------------------------------------------


def test_cli_train_remote_detach(fake_modal, tmp_path):
    from typer.testing import CliRunner

    from visionassist_seg.cli.app import app

    result = CliRunner().invoke(
        app, ["train", "--remote", "--gpu", "H100", "--detach", "--hf-repo", "me/eyes",
              "--output-dir", str(tmp_path / "runs" / "cli-run"), "--epochs", "3"],
    )
    assert result.exit_code == 0, result.output
    assert "vaseg fetch cli-run" in result.output
    (call,) = fake_modal.calls
    assert call[:2] == ("spawn", "train_job")
    sent = _payload(call)
    assert sent["modal"]["gpu"] == "H100" and sent["train"]["epochs"] == 3 and sent["train"]["run_dir"] == "/vol/runs/cli-run"
    assert sent["dataset"]["dir"] == "/vol/datasets/hub/me/eyes/main"


def test_cli_train_remote_without_credentials(no_modal_token, tmp_path):
    from typer.testing import CliRunner

    from visionassist_seg.cli.app import app

    result = CliRunner().invoke(app, ["train", "--remote", "--output-dir", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "modal setup" in result.output and "modal token new" in result.output


@LOCAL_CALL
def test_remote_finalize_pushes_unless_strict_skips(tmp_path, monkeypatch):
    from visionassist_seg import hub
    from visionassist_seg.data import precompute
    from visionassist_seg.pipeline import push

    pushed = []
    monkeypatch.setattr(push, "push_dataset", lambda folder, settings, **options: pushed.append(folder) or "https://hub/x")
    monkeypatch.setattr(hub, "revision_sha", lambda repo, revision=None, token=None: "c0ffee" * 6 + "abcd")
    report = SimpleNamespace(skipped=[{"split": "train", "file": "train/images/1.png", "reason": "bad shape"}])
    monkeypatch.setattr(precompute, "finalize_dataset", lambda settings, tasks, results, seconds: report)
    settings = Settings(dataset={"dir": tmp_path / "d", "strict": True})
    with pytest.raises(VasegError, match="nothing was pushed.*train/images/1.png"):
        jobs.finalize_job(dispatch.settings_payload(settings), [], [], True)
    assert pushed == []
    relaxed = Settings(dataset={"dir": tmp_path / "d", "strict": False})
    assert jobs.finalize_job(dispatch.settings_payload(relaxed), [], [], True) is report
    assert pushed == [tmp_path / "d"]
    # The Volume copy is recorded as that Hub commit, so remote training reuses it without a download.
    assert read_snapshot(tmp_path / "d") == {"origin": "precompute", "repo": relaxed.hub.repo, "sha": "c0ffee" * 6 + "abcd"}
    jobs.finalize_job(dispatch.settings_payload(relaxed), [], [], False)
    assert read_snapshot(tmp_path / "d")["sha"] is None


# --- the Volume's Hub-dataset cache, the real Hub client against a scripted server ------------

SHA_OLD, SHA_NEW = "1" * 40, "2" * 40


@pytest.fixture
def hub_stub(monkeypatch):
    """A StubServer the real HfApi talks to (``constants.ENDPOINT``)."""
    from http_stub import StubServer

    with StubServer() as server:
        monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", server.url)
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
        yield server


def _serve_commit(server, sha: str, files: list[str]) -> None:
    from http_stub import Reply

    server.route("GET", r"/api/datasets/me/eyes(/revision/main)?", Reply(200, {"id": "me/eyes", "sha": sha, "private": False}))
    server.route("GET", rf"/api/datasets/me/eyes/tree/{sha}", Reply(200, [{"type": "file", "path": f, "oid": "0" * 40,
                                                                          "size": 1} for f in files]))


def _cached_dataset(tmp_path: Path, origin: str = "hub", sha: str | None = SHA_OLD) -> Settings:
    from visionassist_seg.remote.volume import write_snapshot

    folder = tmp_path / "vol" / "datasets" / "hub" / "me" / "eyes" / "main"
    for name in ("README.md", "data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")
    write_snapshot(folder, origin, "me/eyes", sha)
    return Settings(hub={"repo": "me/eyes"}, dataset={"dir": folder}, train={"source": "local"})


@pytest.fixture
def no_download(monkeypatch):
    from visionassist_seg import hub

    downloads = mock.Mock(side_effect=AssertionError("the dataset must not be downloaded again"))
    monkeypatch.setattr(hub, "download_dataset", downloads)
    return downloads


def test_hub_cache_on_the_volume_is_reused_while_the_hub_commit_is_unchanged(hub_stub, tmp_path, no_download):
    settings = _cached_dataset(tmp_path)
    _serve_commit(hub_stub, SHA_OLD, [])
    assert jobs.ensure_hub_dataset(settings) == settings.dataset.dir
    assert [r.path for r in hub_stub.requests if "/datasets/" in r.path] == ["/api/datasets/me/eyes"]


def test_hub_cache_survives_a_rejected_hf_secret(hub_stub, tmp_path, no_download, capsys):
    from http_stub import Reply

    settings = _cached_dataset(tmp_path).model_copy(update={"hf_token": SecretStr("hf_badSECRETvalue")})
    hub_stub.route("GET", r"/api/datasets/me/eyes(/revision/main)?", Reply(401, {"error": "Invalid credentials"}))
    assert jobs.ensure_hub_dataset(settings) == settings.dataset.dir
    out = capsys.readouterr().out
    assert "could not check me/eyes" in out and "(401)" in out and "hf_badSECRETvalue" not in out


def test_hub_cache_written_by_an_unpushed_precompute_needs_no_hub(hub_stub, tmp_path, no_download):
    settings = _cached_dataset(tmp_path, origin="precompute", sha=None)
    assert jobs.ensure_hub_dataset(settings) == settings.dataset.dir
    assert [r.path for r in hub_stub.requests if "/datasets/" in r.path] == []


def test_hub_cache_follows_a_new_commit_and_drops_old_shards(hub_stub, tmp_path, monkeypatch):
    from visionassist_seg import hub

    settings = _cached_dataset(tmp_path)
    new_files = [".gitattributes", "README.md", "manifest.json", "data/train-00000-of-00001.parquet"]
    _serve_commit(hub_stub, SHA_NEW, new_files)

    def download(repo, revision=None, *, local_dir=None, token=None):
        for name in new_files[1:]:
            (local_dir / name).write_bytes(b"new")
        return local_dir

    monkeypatch.setattr(hub, "download_dataset", mock.Mock(side_effect=download))
    jobs.ensure_hub_dataset(settings)
    assert hub.download_dataset.call_args.args == ("me/eyes", SHA_NEW)
    assert _files(settings.dataset.dir) == {"README.md", "manifest.json", "data/train-00000-of-00001.parquet",
                                        ".vaseg/hub-snapshot.json"}
    assert read_snapshot(settings.dataset.dir)["sha"] == SHA_NEW


def test_hub_dataset_missing_everywhere_fails_with_the_hub_error(hub_stub, tmp_path, no_download):
    from http_stub import Reply

    folder = tmp_path / "vol" / "empty"
    hub_stub.route("GET", r"/api/datasets/me/eyes(/revision/main)?", Reply(401, {"error": "Invalid credentials"}))
    with pytest.raises(VasegError, match="rejected the token"):
        jobs.ensure_hub_dataset(Settings(hub={"repo": "me/eyes"}, dataset={"dir": folder}, train={"source": "local"}))


# --- the Modal reachability check, against local ports ----------------------------------------


def test_reachability_check_passes_for_a_listening_server():
    from http_stub import StubServer

    from visionassist_seg.remote.connection import check_modal_reachable

    with StubServer() as server:
        check_modal_reachable(server.url, timeout=5)


def test_reachability_check_fails_when_tls_is_not_answered(monkeypatch):
    """Something accepts TCP but does not speak TLS (an intercepting middlebox, a wrong port)."""
    from http_stub import StubServer

    from visionassist_seg.remote.connection import check_modal_reachable

    with StubServer() as server:
        url = f"https://127.0.0.1:{server.port}"
        with pytest.raises(VasegError, match=r"TLS handshake failed") as err:
            check_modal_reachable(url, timeout=5)
    assert f"Cannot reach the Modal server at {url}" in err.value.message


def test_reachability_check_goes_through_the_proxy_modal_would_use(monkeypatch):
    from visionassist_seg.remote.connection import check_modal_reachable

    proxy_port = _closed_port()
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy_port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(VasegError, match=rf"proxy 127.0.0.1:{proxy_port}: Connection refused"):
        check_modal_reachable("https://api.modal.example", timeout=5)


def test_reachability_check_tries_each_fallback_url():
    from http_stub import StubServer

    from visionassist_seg.remote.connection import check_modal_reachable

    with StubServer() as server:
        check_modal_reachable(f"http://127.0.0.1:{_closed_port()},{server.url}", timeout=5)


def test_remote_commands_refuse_a_bad_hf_repo_from_settings_before_modal(fake_modal):
    for call in (lambda: dispatch.precompute_remote(Settings(hub={"repo": "bad repo!!"})),
                 lambda: dispatch.train_remote(Settings(hub={"repo": "bad repo!!"}, train={"source": "hub"}))):
        with pytest.raises(VasegError) as err:
            call()
        assert err.value.exit_code == 2 and "'bad repo!!' is not a Hugging Face repository id" in err.value.message
    assert fake_modal.calls == []


@LOCAL_CALL
def test_remote_finalize_survives_a_hub_that_cannot_be_read_back_after_the_push(tmp_path, monkeypatch):
    from visionassist_seg import hub
    from visionassist_seg.data import precompute
    from visionassist_seg.pipeline import push

    monkeypatch.setattr(push, "push_dataset", lambda folder, settings, **options: "https://hub/x")
    monkeypatch.setattr(hub, "revision_sha", mock.Mock(side_effect=VasegError("Network failure")))
    report = SimpleNamespace(skipped=[])
    monkeypatch.setattr(precompute, "finalize_dataset", lambda settings, tasks, results, seconds: report)
    settings = Settings(dataset={"dir": tmp_path / "d"})
    assert jobs.finalize_job(dispatch.settings_payload(settings), [], [], True) is report
    assert read_snapshot(tmp_path / "d")["sha"] == ""  # not None: the next training asks the Hub itself
