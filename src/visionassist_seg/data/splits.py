"""Which parquet files make up each split of a dataset, resolved the way `datasets.load_dataset` does.

The dataset card's ``configs:`` come first (the default config's ``data_files``, under its
``data_dir``), then datasets' default split patterns (``data/{split}-00000-of-00002.*``,
``data/{split}/...``, ``{split}-*`` and the rest of `datasets.data_files`). The same
resolution, with `datasets`' own functions, serves a local folder and a Hub repository
known only by its file list, so a download fetches just the files of the resolved splits.

`datasets` is imported inside the functions: it takes over a second to import, which
``vaseg --help`` and precompute's workers must not pay.
"""

from __future__ import annotations

import os
import re
import uuid
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator

from visionassist_seg.data.schema import CARD
from visionassist_seg.errors import VasegError

PARQUET = ".parquet"
STANDALONE_YAML = ".huggingface.yaml"  # datasets.config.REPOYAML_FILENAME: merged over the card's YAML
CARD_FILES = (CARD, STANDALONE_YAML)
# datasets' sharded names: SPLIT_PATTERN_SHARDED is data/{split}-[0-9]{5}-of-[0-9]{5}*.*
SHARDED_NAME = re.compile(r"^(?P<prefix>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})(?P<suffix>.*)$")
DEFAULT_SOURCE = "datasets' default split patterns"


@dataclass(frozen=True)
class SplitFiles:
    """The parquet files of each split of the dataset at ``root``, and how they were found.

    ``files`` maps a split to POSIX paths relative to ``root``, in the order `datasets`
    reads them; ``source`` says where the patterns came from (the card or the defaults).
    """

    root: Path
    files: dict[str, tuple[str, ...]]
    source: str

    def paths(self, split: str) -> list[Path]:
        """Return the split's files as paths under ``root`` (empty for an unknown split)."""
        return [self.root / name for name in self.files.get(split, ())]

    def names(self) -> list[str]:
        """Return every resolved file (relative to ``root``) once, split by split."""
        return list(dict.fromkeys(name for names in self.files.values() for name in names))


def resolve_local(dataset_dir: Path) -> SplitFiles:
    """Return the splits of the dataset folder ``dataset_dir`` as `datasets.load_dataset(dataset_dir)` sees them.

    The folder's file list goes through `resolve_listing`: datasets globs patterns joined
    onto the base path, so a folder named like ``eyes[1]`` or ``[bold]x[/]`` would be read
    as a glob character class; a listing under a fixed root has no such characters.

    Raises:
        VasegError: the card's YAML or ``configs:`` is invalid, or names a file that does not exist.
    """
    root = Path(dataset_dir)
    texts = {name: text for name in CARD_FILES if (text := _read_text(root / name)) is not None}
    found = resolve_listing(_listing(root), texts, str(root))
    return SplitFiles(root, found.files, found.source)


def _listing(root: Path) -> list[str]:
    """Return every file under ``root`` as a POSIX path relative to it, hidden folders (``.vaseg/``, ``.git/``) left out."""
    names = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))  # datasets ignores them too
        relative = Path(folder).relative_to(root)
        names += [(relative / name).as_posix() for name in sorted(files)]
    return names


def resolve_listing(files: Iterable[str], card_texts: dict[str, str], where: str) -> SplitFiles:
    """Return the splits of a repository known by its file list (e.g. the Hub's), before downloading any data.

    ``files`` are POSIX paths relative to the repository root; ``card_texts`` holds the
    text of ``README.md`` and ``.huggingface.yaml`` where the repository has them.
    The listing is laid out as empty files in an fsspec memory filesystem, so datasets'
    own pattern resolution (fsspec glob, hidden and ignored files) runs on it unchanged.
    ``where`` names the repository in messages; the returned ``root`` is ``Path(".")``
    (the files are not on disk yet).

    Raises:
        VasegError: as `resolve_local`.
    """
    import fsspec

    card = _card_data(card_texts.get(CARD), card_texts.get(STANDALONE_YAML), f"{where}/{CARD}")
    memory = fsspec.filesystem("memory")
    root = f"/vaseg-listing-{uuid.uuid4().hex}"
    try:
        for name in files:
            memory.pipe_file(f"{root}/{name}", b"")
        found, source = _resolve(f"memory://{root}", card, f"{where}/{CARD}", shown_as=where)
    finally:
        if memory.exists(root):
            memory.rm(root, recursive=True)
    return SplitFiles(Path("."), _relative(found, root), source)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise VasegError(f"Cannot read {path} ({err}). Fix or remove it: `datasets` reads it to find the splits.") from None


def _card_data(card_text: str | None, yaml_text: str | None, card_path):  # -> huggingface_hub.DatasetCardData
    """Return the card's YAML metadata, with ``.huggingface.yaml`` merged over it as datasets merges it."""
    import yaml
    from huggingface_hub import DatasetCard, DatasetCardData

    try:
        # A card without a YAML block has no metadata (DatasetCard would log a warning about it).
        data = DatasetCard(card_text).data.to_dict() if card_text and card_text.startswith("---") else {}
        extra = yaml.safe_load(yaml_text) if yaml_text else None
    except (ValueError, yaml.YAMLError) as err:
        raise VasegError(
            f"The YAML header of {card_path} (or {STANDALONE_YAML} beside it) is not valid YAML ({_shown(err)}). "
            "Fix it: `datasets` reads its configs to find the splits."
        ) from None
    if isinstance(extra, dict):
        data.update(extra)
    return DatasetCardData(**data)


def _resolve(base: str, card, card_path, shown_as: str | None = None) -> tuple[dict[str, list[str]], str]:
    """Return split -> resolved file URLs (parquet only) under ``base``, and where the patterns came from.

    ``shown_as`` replaces ``base`` in error messages (a memory-filesystem path means nothing to a user).
    """
    from datasets.data_files import DataFilesDict, EmptyDatasetError

    try:
        patterns, pattern_base, source = _patterns(base, card)
        with _quiet_progress():
            resolved = DataFilesDict.from_patterns(patterns, base_path=pattern_base, allowed_extensions=[PARQUET])
    except EmptyDatasetError:
        return {}, f"{DEFAULT_SOURCE} (no data files found)"
    except FileNotFoundError as err:
        raise VasegError(
            f"The configs in {card_path} name a data file that does not exist ({_shown(err, base, shown_as)}). "
            "Fix `data_files` there, or restore the file."
        ) from None
    except (ValueError, TypeError, AttributeError, KeyError) as err:  # a card is user input: any shape may come
        raise VasegError(
            f"`datasets` cannot resolve the splits of {card_path} ({_shown(err, base, shown_as)}). Fix its `configs:` "
            "(see https://huggingface.co/docs/hub/datasets-manual-configuration)."
        ) from None
    # A file matched by two patterns of one split is still one file; a split whose patterns
    # match no parquet file (e.g. the catch-all "**" over non-parquet files) has no data.
    return {str(split): list(dict.fromkeys(names)) for split, names in resolved.items() if names}, source


def _shown(err: Exception, base: str = "", shown_as: str | None = None, limit: int = 300) -> str:
    """Return ``err`` as one short line (YAML and card errors span several lines), ``base`` written as ``shown_as``."""
    text = " ".join(str(err).split())
    text = text.replace(base, shown_as) if shown_as else text
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _patterns(base: str, card) -> tuple[dict[str, list[str]], str, str]:
    """Return (split -> patterns, base they are relative to, description): the card's default config, else the defaults."""
    from datasets.data_files import get_data_patterns, sanitize_patterns
    from datasets.utils.file_utils import xjoin
    from datasets.utils.metadata import MetadataConfigs

    configs = MetadataConfigs.from_dataset_card_data(card)
    if configs:
        name = configs.get_default_config_name()
        if name is None:
            raise ValueError(
                f"the card has several configs ({', '.join(configs)}) and none is the default: mark one "
                "with `default: true`"
            )
        params = configs[name]
        base = xjoin(base, params["data_dir"]) if params.get("data_dir") else base
        if params.get("data_files") is not None:
            return sanitize_patterns(params["data_files"]), base, f"the card's configs (config '{name}')"
    return get_data_patterns(base), base, DEFAULT_SOURCE


@contextmanager
def _quiet_progress() -> Iterator[None]:
    """Hide datasets' "Resolving data files" bar: resolution is a step of a vaseg command, which reports its own."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def _relative(files: dict[str, list[str]], root: str) -> dict[str, tuple[str, ...]]:
    """Return the resolved URLs as POSIX paths relative to ``root`` (a local path or a memory-filesystem path)."""
    out: dict[str, tuple[str, ...]] = {}
    for split, urls in files.items():
        names = []
        for url in urls:
            path = PurePosixPath(url.split("://", 1)[-1])
            try:
                names.append(path.relative_to(PurePosixPath(root.split("://", 1)[-1])).as_posix())
            except ValueError:
                raise VasegError(
                    f"Split '{split}' of the dataset card's configs points outside the dataset ({url}). "
                    "vaseg reads only files inside the dataset: copy them in and point `data_files` at them."
                ) from None
        out[split] = tuple(names)
    return out


def incomplete_shard_sets(found: SplitFiles) -> list[str]:
    """Return one sentence per sharded set (``NAME-00000-of-00003.parquet``) that is not complete, naming what is missing.

    Only files with ``-of-N`` names say how many there should be; other names are not checked.
    """
    problems = []
    for split, names in found.files.items():
        sets: dict[tuple[str, str], dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
        for name in names:
            path = PurePosixPath(name)
            match = SHARDED_NAME.match(path.name)
            if match:
                stem = (path.parent / match["prefix"]).as_posix()
                sets[(stem, match["suffix"])][int(match["count"])].add(int(match["index"]))
        for (stem, suffix), by_count in sorted(sets.items()):
            problems += _set_problems(split, stem, suffix, by_count)
    return problems


def _set_problems(split: str, stem: str, suffix: str, by_count: dict[int, set[int]]) -> list[str]:
    """Return why the shards ``stem-INDEX-of-COUNT suffix`` of one split are not exactly 0..COUNT-1 of one COUNT."""
    if len(by_count) > 1:
        counts = ", ".join(f"{count:05d}" for count in sorted(by_count))
        return [
            f"split '{split}': the shards {stem}-*{suffix} disagree on the shard count (-of-{counts}): files of "
            "two different runs are mixed; remove the stale ones or rerun `vaseg precompute`"
        ]
    count, indexes = next(iter(by_count.items()))
    missing = [f"{stem}-{i:05d}-of-{count:05d}{suffix}" for i in range(count) if i not in indexes]
    beyond = sorted(i for i in indexes if i >= count)
    problems = []
    if missing:
        listed = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        problems.append(f"split '{split}' is incomplete: {len(missing)} of {count} shards missing ({listed})")
    if beyond:
        problems.append(f"split '{split}': shard index(es) {beyond} of {stem}-*{suffix} exceed the count {count}")
    return problems


def has_shard_counts(found: SplitFiles) -> bool:
    """Return True when any resolved file has an ``-of-N`` name (so completeness can be checked from names)."""
    return any(SHARDED_NAME.match(PurePosixPath(name).name) for name in found.names())
