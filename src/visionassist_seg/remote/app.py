"""The Modal app: images, Volume, secrets and the remote functions, built from the settings.

Nothing here runs at import: `build_app(settings)` creates the Modal objects when a
``--remote`` command needs them (GPU type, timeout and secrets are only known then), so
importing vaseg stays cheap. The function bodies live in `visionassist_seg.remote.jobs` at
module level, which is how the container finds them after importing the shipped package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Literal

from visionassist_seg.errors import VasegError
from visionassist_seg.remote.volume import VOLUME_MOUNT
from visionassist_seg.settings import Settings

PYTHON_VERSION = "3.11"
PACKAGE = "visionassist_seg"
DISTRIBUTION = "visionassist-seg"
# Modal installs its own client into every image; pinning another version could break the container.
CLIENT_SUPPLIED = frozenset({"modal"})
# Only the training image gets the `train` extra (torch: PyPI's Linux wheel is the CUDA build);
# the precompute image stays small.
TRAIN_EXTRA = "train"
# The torch release vaseg is tested with (the README's install command and CI install it). The
# training image pins it when this machine has no torch (a core install that trains on Modal);
# otherwise it pins the local torch, so the container runs what local training runs.
TORCH_VERSION = "2.13.0"
Job = Literal["train", "prepare", "write_shards", "finalize"]
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


@dataclass(frozen=True)
class ImageRecipe:
    """What goes into a container image; `build_image` turns it into a `modal.Image`."""

    python_version: str
    apt_packages: tuple[str, ...]
    pip_packages: tuple[str, ...]
    local_python_sources: tuple[str, ...]


@dataclass(frozen=True)
class FunctionOptions:
    """Resources and secret names of one remote function."""

    image: Literal["gpu", "cpu"]
    gpu: str | None
    timeout: int
    cpu: float
    memory: int
    secrets: tuple[str, ...]


@dataclass
class RemoteApp:
    """The built Modal app, its Volume and its functions by job name."""

    app: Any  # modal.App
    volume: Any  # modal.Volume
    functions: dict[str, Any] = field(default_factory=dict)  # job name -> modal.Function


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_requirements(extras: tuple[str, ...] = ()) -> list[str]:
    """Return the package's runtime requirements (and those of ``extras``) pinned to the locally installed versions.

    Pinning makes the container run the same library versions as local training; a
    requirement that is not installed locally keeps its declared specifier, except torch,
    which is pinned to `TORCH_VERSION`. Other extras (``mlflow``, ``dev``) are not included.

    Raises:
        VasegError: the package is not installed (its metadata is missing).
    """
    try:
        declared = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        raise VasegError(
            f"Package metadata for {DISTRIBUTION} not found, so the Modal image cannot list its dependencies. "
            "Install vaseg into the environment you run it from (`pip install -e .` in the source tree)."
        ) from None
    pinned = []
    for requirement in declared:
        spec, _, marker = requirement.partition(";")
        extra = _EXTRA.search(marker)
        if extra is not None and extra.group(1) not in extras:
            continue
        match = _NAME.match(spec)
        if match is None:
            continue
        pinned.append(_pin(match.group(1), spec.strip()))
    return pinned


def _pin(name: str, spec: str) -> str:
    try:
        version = metadata.version(name)
    except metadata.PackageNotFoundError:
        return f"torch=={TORCH_VERSION}" if _normalise(name) == "torch" else spec
    # A local version label (torch's "+cpu") names a build, not a release on PyPI.
    return f"{name}=={version.split('+')[0]}"


def image_recipe(settings: Settings, *, gpu: bool) -> ImageRecipe:
    """Return the recipe of the GPU (training) or CPU (precompute) image."""
    packages = [
        requirement
        for requirement in runtime_requirements((TRAIN_EXTRA,) if gpu else ())
        if _normalise(_NAME.match(requirement).group(1)) not in CLIENT_SUPPLIED
    ]
    apt: list[str] = []
    if gpu and settings.modal.mlflow_secret:
        packages.append("mlflow>=2.10")
    if gpu and settings.train.compile:
        # torch.compile's Triton backend builds a small C launcher at run time.
        apt.append("build-essential")
    return ImageRecipe(
        python_version=PYTHON_VERSION,
        apt_packages=tuple(apt),
        pip_packages=tuple(packages),
        local_python_sources=(PACKAGE,),
    )


def build_image(recipe: ImageRecipe):  # -> modal.Image
    """Return the `modal.Image` for ``recipe``; the local package source is added last."""
    import modal

    image = modal.Image.debian_slim(python_version=recipe.python_version)
    if recipe.apt_packages:
        image = image.apt_install(*recipe.apt_packages)
    image = image.pip_install(*recipe.pip_packages)
    # Shipped from the local source tree at every run: the container runs exactly the local code.
    return image.add_local_python_source(*recipe.local_python_sources)


def function_options(settings: Settings, job: Job, *, push: bool = True) -> FunctionOptions:
    """Return the resources and secret names of remote function ``job``.

    Only the secrets a job needs are attached, because Modal refuses to start an app
    whose secrets do not exist: training needs no Kaggle secret, a synthetic
    precompute needs none, and ``--no-push`` needs no Hub secret.
    """
    if job == "train":
        secrets = [settings.modal.hf_secret]
        if settings.modal.mlflow_secret:
            secrets.append(settings.modal.mlflow_secret)
        return FunctionOptions("gpu", settings.modal.gpu, settings.modal.timeout, settings.modal.cpu,
                               settings.modal.memory, tuple(secrets))
    if job == "prepare":
        secrets = [settings.modal.kaggle_secret] if settings.raw.source == "kaggle" else []
    elif job == "finalize":
        secrets = [settings.modal.hf_secret] if push else []
    else:
        secrets = []
    return FunctionOptions("cpu", None, settings.modal.timeout, settings.modal.cpu, settings.modal.memory,
                           tuple(secrets))


def jobs_for(command: Literal["train", "precompute"]) -> tuple[Job, ...]:
    """Return the remote functions a command uses."""
    return ("train",) if command == "train" else ("prepare", "write_shards", "finalize")


def build_app(
    settings: Settings, *, command: Literal["train", "precompute"] = "train", push: bool = True
) -> RemoteApp:
    """Return the Modal app with the functions ``command`` needs, configured from ``settings``.

    Defining the app, images, Volume and secrets needs no network; they are created
    or looked up when the app runs.
    """
    import modal

    from visionassist_seg.remote import jobs

    app = modal.App(settings.modal.app_name)
    volume = modal.Volume.from_name(settings.modal.volume, create_if_missing=True)
    images: dict[str, Any] = {}
    remote = RemoteApp(app=app, volume=volume)
    for job in jobs_for(command):
        options = function_options(settings, job, push=push)
        if options.image not in images:
            images[options.image] = build_image(image_recipe(settings, gpu=options.image == "gpu"))
        decorate = app.function(
            image=images[options.image],
            gpu=options.gpu,
            timeout=options.timeout,
            cpu=options.cpu,
            memory=options.memory,
            volumes={str(VOLUME_MOUNT): volume},
            secrets=[modal.Secret.from_name(name) for name in options.secrets],
            # The package is already in the image; don't mount the defining module a second time.
            include_source=False,
        )
        remote.functions[job] = decorate(getattr(jobs, f"{job}_job"))
    return remote
