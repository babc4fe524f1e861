"""The one schema and what derives from it: HF features (with and without datasets), the card table, validate's line."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq

from visionassist_seg.data.card import schema_table
from visionassist_seg.data.schema import COLUMNS, SCHEMA, dataset_features, describe_columns, feature_dicts, hf_arrow_schema


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


def test_feature_dicts_are_what_datasets_stores_in_parquet_metadata():
    # Features.to_dict gives shapes as tuples; the stored JSON (what validate compares) has lists.
    assert feature_dicts() == json.loads(json.dumps(dataset_features().to_dict()))


def test_describe_columns_groups_neighbours_of_one_type():
    assert describe_columns() == (
        "image/label uint8 [400, 640], spatial_weights float32 [400, 640], dist_map float32 [2, 400, 640], "
        "filename string, preprocessed bool"
    )


def test_card_schema_table_has_a_row_per_column_in_order():
    lines = schema_table().splitlines()
    assert lines[:2] == ["| column | type | content |", "|---|---|---|"]
    assert [line.split(" | ")[0].lstrip("| ") for line in lines[2:]] == list(COLUMNS) == [c.name for c in SCHEMA]
    assert lines[5] == (
        "| dist_map | float32 [2, 400, 640] (`Array3D`) | signed distance to each class (0 background, 1 pupil), "
        "divided by the image diagonal |"
    )
    assert lines[6] == "| filename | string | file stem of the raw OpenEDS image |"
