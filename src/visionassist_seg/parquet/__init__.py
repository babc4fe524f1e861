"""The parquet file format as vaseg writes and reads it: writer, page reader, Thrift codec, byte streams.

Imports nothing from the rest of vaseg but its version string: the schema a file holds
is passed in by the caller (`visionassist_seg.data.shards`).
"""
