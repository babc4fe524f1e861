"""Check that older parquet readers (pyarrow 15, duckdb 1.1) read every column of a vaseg dataset exactly.

Not part of the test suite: it needs a second Python environment with the old readers,
made once with

    python3 -m venv /tmp/oldreaders
    /tmp/oldreaders/bin/pip install pyarrow==15.0.2 'numpy<2' duckdb==1.1.3

Then, from vaseg's environment:

    python benchmarks/old_readers.py --python /tmp/oldreaders/bin/python
    python benchmarks/old_readers.py --python /tmp/oldreaders/bin/python --dataset DIR

Without ``--dataset`` it makes a small one through the CLI (``vaseg download --source
synthetic --count 8``, then ``vaseg precompute --no-push --workers 1``). Every column of
every shard is read with this environment's pyarrow (the reference) and, in the other
environment, with its pyarrow and duckdb; all are dumped to .npy and compared value for
value and dtype for dtype. A reader that fails on a shard is reported with its error.
Exit status 1 unless every reader matches on every column.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

COLUMNS = ("image", "label", "spatial_weights", "dist_map", "filename", "preprocessed")

# Runs in the old environment: argv = dataset folder, output folder. Writes
# {reader}/{shard stem}.{column}.npy, or {reader}/{shard stem}.error with the message.
OLD_READER_CODE = r'''
import json, sys, traceback
from pathlib import Path
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import duckdb

COLUMNS = ("image", "label", "spatial_weights", "dist_map", "filename", "preprocessed")
DEPTH = {"image": 2, "label": 2, "spatial_weights": 2, "dist_map": 3}


def to_numpy(column, name):
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if name not in DEPTH:
        return np.asarray(column.to_pylist(), dtype=str if name == "filename" else bool)
    if isinstance(column.type, pa.ExtensionType):
        column = column.storage
    rows = len(column)
    for _ in range(DEPTH[name]):
        column = column.flatten()
    return column.to_numpy(zero_copy_only=False).reshape(rows, -1)


def dump(reader, path, out, read):
    folder = out / reader
    folder.mkdir(parents=True, exist_ok=True)
    try:
        table = read(path)
        for name in COLUMNS:
            np.save(folder / f"{path.stem}.{name}.npy", to_numpy(table.column(name), name))
    except Exception as err:  # report the reader's own error, whatever it is
        (folder / f"{path.stem}.error").write_text(f"{type(err).__name__}: {err}")


def read_duckdb(path):
    connection = duckdb.connect()
    connection.execute("SET threads = 1")  # keep file order
    return connection.execute(f"SELECT {', '.join(COLUMNS)} FROM read_parquet('{path}')").arrow()


dataset, out = Path(sys.argv[1]), Path(sys.argv[2])
for path in sorted(dataset.glob("data/*.parquet")):
    dump("pyarrow " + pa.__version__, path, out, lambda p: pq.read_table(p, use_threads=False))
    dump("duckdb " + duckdb.__version__, path, out, read_duckdb)
    metadata = pq.ParquetFile(path).metadata
    encodings = {metadata.row_group(0).column(j).path_in_schema.split(".")[0]: list(metadata.row_group(0).column(j).encodings)
                 for j in range(metadata.num_columns)} if metadata.num_row_groups else {}
    (out / f"{path.stem}.encodings.json").write_text(json.dumps(encodings))
'''


def make_dataset(work: Path) -> Path:
    """Make a small synthetic dataset through the vaseg CLI; return its folder."""
    vaseg = [sys.executable, "-m", "visionassist_seg"]
    raw, out = work / "raw", work / "dataset"
    subprocess.run([*vaseg, "download", "--source", "synthetic", "--count", "8", "--raw-dir", str(raw)], check=True, capture_output=True)
    subprocess.run(
        [*vaseg, "precompute", "--source", "synthetic", "--skip-download", "--no-push", "--workers", "1",
         "--shard-size", "4", "--raw-dir", str(raw), "--output-dir", str(out)],
        check=True, capture_output=True,
    )
    return out


def reference(path: Path) -> dict[str, np.ndarray]:
    """Return every column of ``path`` as read by this environment's pyarrow, flattened per row."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    out = {}
    for name in COLUMNS:
        column = table.column(name).combine_chunks()
        if name in ("filename", "preprocessed"):
            out[name] = np.asarray(column.to_pylist(), dtype=str if name == "filename" else bool)
        else:
            out[name] = _flat_values(column).reshape(len(column), -1)
    return out


def _flat_values(column) -> np.ndarray:  # column: pyarrow Array of nested lists (or their extension type)
    import pyarrow as pa

    if isinstance(column.type, pa.ExtensionType):
        column = column.storage
    while pa.types.is_list(column.type):
        column = column.flatten()
    return column.to_numpy(zero_copy_only=False)


def compare(dataset: Path, dumps: Path) -> list[tuple[str, str, str]]:
    """Return (reader, shard, result) for every old reader and shard."""
    results = []
    readers = sorted(p.name for p in dumps.iterdir() if p.is_dir())
    for path in sorted(dataset.glob("data/*.parquet")):
        expected = reference(path)
        for reader in readers:
            error = dumps / reader / f"{path.stem}.error"
            if error.exists():
                results.append((reader, path.name, "ERROR " + error.read_text()[:200]))
                continue
            bad = []
            for name in COLUMNS:
                got = np.load(dumps / reader / f"{path.stem}.{name}.npy")
                want = expected[name]
                if got.dtype != want.dtype or got.shape != want.shape or not np.array_equal(got, want):
                    bad.append(f"{name} ({got.dtype}{list(got.shape)} vs {want.dtype}{list(want.shape)})")
            rows = len(expected["filename"])
            results.append((reader, path.name, f"identical, {rows} rows x {len(COLUMNS)} columns" if not bad else "DIFFERS: " + ", ".join(bad)))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", type=Path, required=True, help="Python of the environment with the old readers")
    parser.add_argument("--dataset", type=Path, help="dataset folder to check (default: make one with the vaseg CLI)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vaseg-old-readers-") as tmp:
        work = Path(tmp)
        dataset = args.dataset or make_dataset(work)
        dumps = work / "dumps"
        dumps.mkdir()
        subprocess.run([str(args.python), "-c", OLD_READER_CODE, str(dataset), str(dumps)], check=True)
        encodings = sorted(dumps.glob("*.encodings.json"))
        if encodings:
            print(f"encodings ({encodings[0].name.split('.')[0]}, row group 0): {encodings[0].read_text()}")
        results = compare(dataset, dumps)
    for reader, shard, result in results:
        print(f"{reader:16} {shard:36} {result}")
    return 0 if results and all(result.startswith("identical") for *_, result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
