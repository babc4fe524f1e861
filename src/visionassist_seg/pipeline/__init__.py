"""Orchestration: the steps from raw data to a published dataset, and the end-to-end demo.

`pipeline.precompute` (fetch raw data -> write shards -> the --strict check), `pipeline.push`
(validate -> upload) and `pipeline.demo` (synthetic data -> precompute -> validate -> train
-> ONNX) join the library layers below (data, validate, train, hub, kaggle) into the jobs
the commands run. `cli/` and `remote/jobs.py` call these; nothing below calls them. Only
`cli/` and this package print: the layers below report progress through callbacks.
"""
