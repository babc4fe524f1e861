"""hf_arrow_schema: the datasets feature schema, built without importing datasets."""

from __future__ import annotations

import io
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq

from visionassist_seg.data.schema import dataset_features, hf_arrow_schema


def _footer_metadata(schema: pa.Schema) -> dict[bytes, bytes]:
    buffer = io.BytesIO()
    pq.write_table(schema.empty_table(), buffer)
    return dict(pq.read_metadata(io.BytesIO(buffer.getvalue())).metadata)


def test_hf_arrow_schema_writes_the_same_footer_metadata_as_datasets():
    assert _footer_metadata(hf_arrow_schema()) == _footer_metadata(dataset_features().arrow_schema)


def test_hf_arrow_schema_reads_back_as_the_dataset_features():
    features = dataset_features()  # registers the extension types with pyarrow
    buffer = io.BytesIO()
    pq.write_table(hf_arrow_schema().empty_table(), buffer)
    assert pq.read_schema(io.BytesIO(buffer.getvalue())).equals(features.arrow_schema, check_metadata=True)


def test_hf_key_value_metadata_imports_neither_datasets_nor_pandas():
    code = "import sys; from visionassist_seg.data.shards import hf_key_value_metadata; hf_key_value_metadata(); print('datasets' in sys.modules or 'pandas' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert result.stdout.strip() == "False"
