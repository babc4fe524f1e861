"""Bytes and speed of parquet encodings for the uint8 ``image`` and ``label`` columns.

The shard writer stores one data page per row and column, zstd level 1. Parquet has no
8-bit physical type, so uint8 values are INT32 with a UINT_8 annotation. This script
encodes the same synthetic rows (gamma + CLAHE images, 0/1 pupil labels) as one page per
row with each candidate and reports compressed bytes per sample, encode + compress ms
and decompress + decode ms per sample:

- ``byte_stream_split``: INT32 BYTE_STREAM_SPLIT, the old layout (low-byte stream = the
  values, three zero streams). pyarrow < 16 and duckdb < 2.0 cannot read it.
- ``plain``: INT32 PLAIN, four bytes a value.
- ``dictionary_identity``: RLE_DICTIONARY whose dictionary is 0..255 and whose indices
  are one bit-packed run of width 8, so the index bytes are the uint8 values themselves.
- ``dictionary_1bit``: the same with the dictionary [0, 1] and width 1 (label only).
- ``delta_binary_packed (pyarrow)``: DELTA_BINARY_PACKED as pyarrow's C++ encoder writes
  it (a flat INT32 column, one page a row); its times are pyarrow's write and read of
  that column, an optimistic bound for an encoder of our own.

Then whole shards, as precompute writes them (all six columns, row groups of 16), with
the uint8 columns in the old layout (byte_stream_split) and the new one (dictionary):
bytes per sample on disk, ShardWriter ms per sample, and the training loader's page
path (`RowPages`) ms per row to decode image + label; the two layouts interleaved so a
busy machine slows both alike.

    python benchmarks/uint8_encodings.py              # 32 samples
    python benchmarks/uint8_encodings.py --samples 64
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import tempfile
import time
from pathlib import Path

import numpy as np


def synthetic_rows(count: int) -> list[dict[str, np.ndarray]]:
    """Return ``count`` preprocessed synthetic rows: ``image`` and ``label`` uint8 (400, 640)."""
    from visionassist_seg.data.synthetic import make_sample
    from visionassist_seg.ops import preprocess_sample

    rows = []
    for index in range(count):
        sample = preprocess_sample(*make_sample(0, "train", index))
        rows.append(
            {"image": sample.image, "label": sample.label, "spatial_weights": sample.spatial_weights,
             "dist_map": sample.dist_map, "filename": f"{index:07d}", "preprocessed": True}
        )
    return rows


def measure_shards(rows: list[dict], repeats: int) -> dict[str, tuple[float, float, float]]:
    """Return {uint8 layout: (bytes/sample, best write ms/sample, best image + label decode ms/row)}, runs interleaved."""
    from visionassist_seg.parquet.columns import BYTE_STREAM_SPLIT, DICTIONARY
    from visionassist_seg.parquet.writer import ShardWriter
    from visionassist_seg.data.shards import compression_levels, hf_key_value_metadata, shard_columns

    layouts = {
        name: [dataclasses.replace(c, encoding=name) if c.dtype == np.uint8 else c for c in shard_columns()]
        for name in (BYTE_STREAM_SPLIT, DICTIONARY)
    }
    metadata, levels = hf_key_value_metadata(), compression_levels(3)
    times: dict[str, list[float]] = {name: [] for name in layouts}
    decode: dict[str, list[float]] = {name: [] for name in layouts}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            for name, columns in layouts.items():
                path = Path(tmp) / f"{name}.parquet"
                start = time.perf_counter()
                with ShardWriter(path, columns, metadata, levels) as writer:
                    for first in range(0, len(rows), 16):
                        writer.write_rows(rows[first : first + 16])
                times[name].append((time.perf_counter() - start) * 1e3 / len(rows))
                sizes[name] = path.stat().st_size
                decode[name].append(_page_decode_ms(path))
    return {name: (sizes[name] / len(rows), min(times[name]), min(decode[name])) for name in layouts}


def _page_decode_ms(path: Path) -> float:
    """Return ms per row for the loader's page path to decode the image and label columns of ``path``."""
    from visionassist_seg.train.rows import ParquetReader
    from visionassist_seg.train.split_index import index_split

    reader = ParquetReader()
    elapsed, count = 0.0, 0
    for piece in index_split("train", [path]).slices:
        pages = reader.row_pages(piece)
        start = time.perf_counter()
        for k in range(piece.rows):
            for name in ("image", "label"):
                pages._decode(name, pages.columns[name], k)
        elapsed += time.perf_counter() - start
        count += piece.rows
    reader.close()
    return elapsed * 1e3 / count


def _bitpacked_header(count: int) -> bytes:
    from visionassist_seg.parquet.thrift import varint

    return varint(((count + 7) // 8) << 1 | 1)


def encode(candidate: str, values: np.ndarray) -> bytes | np.ndarray:
    """Return one page's value bytes for ``values`` (uint8, any shape) in ``candidate``'s encoding."""
    flat = values.reshape(-1)
    if candidate == "byte_stream_split":
        out = np.zeros(4 * flat.size, np.uint8)
        out[: flat.size] = flat
        return out
    if candidate == "plain":
        return flat.astype("<i4")
    if candidate == "dictionary_identity":
        return b"\x08" + _bitpacked_header(flat.size) + flat.tobytes()
    if candidate == "dictionary_1bit":
        return b"\x01" + _bitpacked_header(flat.size) + np.packbits(flat, bitorder="little").tobytes()
    raise ValueError(candidate)


def decode(candidate: str, raw: memoryview, count: int) -> np.ndarray:
    """Return the uint8 values of a page encoded by `encode`."""
    data = np.frombuffer(raw, np.uint8)
    if candidate == "byte_stream_split":
        return data[:count]
    if candidate == "plain":
        return data.view("<i4").astype(np.uint8)
    header = len(_bitpacked_header(count)) + 1
    if candidate == "dictionary_identity":
        return data[header : header + count]
    return np.unpackbits(data[header:], count=count, bitorder="little")


def measure_numpy(candidate: str, rows: list[dict], column: str) -> tuple[float, float, float]:
    """Return (compressed bytes, encode + compress ms, decompress + decode ms) per sample."""
    import pyarrow as pa

    codec = pa.Codec("zstd", compression_level=1)
    pages = []
    start = time.perf_counter()
    for row in rows:
        payload = encode(candidate, row[column])
        pages.append((codec.compress(payload), memoryview(payload).nbytes))
    encode_ms = (time.perf_counter() - start) * 1e3 / len(rows)
    start = time.perf_counter()
    for (page, size), row in zip(pages, rows, strict=True):
        values = decode(candidate, memoryview(codec.decompress(page, decompressed_size=size)), row[column].size)
        if not np.array_equal(values, row[column].reshape(-1)):
            raise AssertionError(f"{candidate} does not round-trip {column}")
    decode_ms = (time.perf_counter() - start) * 1e3 / len(rows)
    return sum(page.size for page, _ in pages) / len(rows), encode_ms, decode_ms


def measure_pyarrow(encoding: str, rows: list[dict], column: str) -> tuple[float, float, float]:
    """Return (column bytes, write ms, read ms) per sample for pyarrow writing ``encoding``, one page a row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    size = rows[0][column].size
    values = pa.array(np.concatenate([row[column].reshape(-1) for row in rows]).astype(np.int32))
    table = pa.table([values], schema=pa.schema([pa.field("v", pa.int32(), nullable=False)]))
    options = {"use_dictionary": encoding == "RLE_DICTIONARY", "compression": "zstd", "compression_level": 1,
               "write_statistics": False, "data_page_size": 1 << 30, "row_group_size": size}
    if encoding != "RLE_DICTIONARY":
        options["column_encoding"] = {"v": encoding}
    buffer = io.BytesIO()
    start = time.perf_counter()
    pq.write_table(table, buffer, **options)
    write_ms = (time.perf_counter() - start) * 1e3 / len(rows)
    data = buffer.getvalue()
    metadata = pq.ParquetFile(io.BytesIO(data)).metadata
    column_bytes = sum(metadata.row_group(i).column(0).total_compressed_size for i in range(metadata.num_row_groups))
    start = time.perf_counter()
    read = pq.read_table(io.BytesIO(data), use_threads=False).column("v").to_numpy()
    read_ms = (time.perf_counter() - start) * 1e3 / len(rows)
    if not np.array_equal(read, values.to_numpy()):
        raise AssertionError(f"pyarrow {encoding} does not round-trip {column}")
    return column_bytes / len(rows), write_ms, read_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="timings are the best of this many runs")
    args = parser.parse_args()
    rows = synthetic_rows(args.samples)
    print(f"{args.samples} synthetic samples, zstd level 1, one page per row; best of {args.repeats}")
    print(f"{'column':7} {'candidate':34} {'bytes/sample':>12} {'encode ms':>10} {'decode ms':>10}")
    numpy_candidates = ["byte_stream_split", "plain", "dictionary_identity", "dictionary_1bit"]
    pyarrow_candidates = ["PLAIN", "RLE_DICTIONARY", "DELTA_BINARY_PACKED"]
    for column in ("image", "label"):
        for candidate in numpy_candidates + [f"{e} (pyarrow)" for e in pyarrow_candidates]:
            if candidate == "dictionary_1bit" and column == "image":
                continue
            if candidate.endswith("(pyarrow)"):
                runs = [measure_pyarrow(candidate.split()[0], rows, column) for _ in range(args.repeats)]
            else:
                runs = [measure_numpy(candidate, rows, column) for _ in range(args.repeats)]
            size = runs[0][0]
            encode_ms, decode_ms = min(r[1] for r in runs), min(r[2] for r in runs)
            print(f"{column:7} {candidate:34} {size:12,.0f} {encode_ms:10.3f} {decode_ms:10.3f}")
    print("\nwhole shards (all columns, zstd as precompute writes them), uint8 layouts interleaved")
    print(f"{'uint8 layout':34} {'bytes/sample':>12} {'write ms/sample':>16} {'page-path decode ms/row':>24}")
    for name, (size, ms, decode_ms) in measure_shards(rows, args.repeats).items():
        print(f"{name:34} {size:12,.0f} {ms:16.2f} {decode_ms:24.3f}")


if __name__ == "__main__":
    main()
