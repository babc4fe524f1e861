"""Raw OpenEDS layout, synthetic data, parquet shards and dataset loading."""
