import numpy as np
import pytest

from visionassist_seg.parquet.byte_streams import unsplit_streams
from visionassist_seg.train.rows import ParquetReader
from visionassist_seg.train.split_index import index_dataset

from arrow_rows import leaf_path
from train_fixtures import make_rows, write_split


def _compare(path, expect_direct: bool) -> None:
    index = index_dataset(path.parent.parent)["train"]
    direct, arrow = ParquetReader(), ParquetReader()
    for piece in index.slices:
        a, b = direct.read(piece), arrow.read_with_pyarrow(piece)
        assert direct._direct[str(path)] is expect_direct
        for name in b:
            assert a[name].dtype == b[name].dtype, name
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    direct.close()


@pytest.fixture(scope="module")
def rows():
    return make_rows(3, seed=11)


def _write(tmp_path, rows, **options):
    path = tmp_path / "data" / "train-00000-of-00001.parquet"
    write_split(path, rows, row_group_size=2, **options)
    write_split(tmp_path / "data" / "validation-00000-of-00001.parquet", rows[:1], row_group_size=2)
    return path


def test_direct_decoder_matches_pyarrow_on_precompute_shards(tmp_path, rows):
    _compare(_write(tmp_path, rows), expect_direct=True)


def test_direct_decoder_matches_pyarrow_on_v2_pages_and_plain_floats(tmp_path, rows):
    _compare(_write(tmp_path, rows, use_dictionary=False, data_page_version="2.0"), expect_direct=True)


def test_pyarrow_dictionary_encoded_shards_decode_directly(tmp_path, rows):
    # pyarrow's dictionaries are in order of appearance (not the identity) and its index
    # runs mix RLE and bit-packing at several widths: the general dictionary path.
    _compare(_write(tmp_path, rows, use_dictionary=True), expect_direct=True)


def test_delta_encoded_shards_fall_back_to_pyarrow(tmp_path, rows):
    delta = {leaf_path(name): "DELTA_BINARY_PACKED" for name in ("image", "label")}
    _compare(_write(tmp_path, rows, use_dictionary=False, column_encoding=delta), expect_direct=False)


def test_snappy_and_small_pages_decode(tmp_path, rows):
    _compare(_write(tmp_path, rows, use_dictionary=["filename"], compression="snappy", data_page_size=4096), expect_direct=True)


@pytest.mark.parametrize("count", [1, 7, 640, 512_000, 999_983])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unsplit_streams_inverts_byte_stream_split(count, dtype):
    values = np.random.default_rng(count).standard_normal(count).astype(dtype)
    split = values.view(np.uint8).reshape(count, values.itemsize).T.copy().reshape(-1)
    out = np.empty(count, dtype)
    unsplit_streams(split, out)
    np.testing.assert_array_equal(out, values)

