"""Dataset validation: structure, schema, values, recomputation from raw files, statistics."""

from visionassist_seg.validate.report import CheckRow, Failure, ValidationReport
from visionassist_seg.validate.run import validate_dataset

__all__ = ["CheckRow", "Failure", "ValidationReport", "validate_dataset"]
