"""Pure preprocessing functions: numpy in, numpy out, no I/O, no settings.

Each step is bit-exact with the published OpenEDS/ShallowNet pipeline
(REFERENCE.md section 2); `preprocess_sample` composes them.
"""

from visionassist_seg.ops.distance import distance_maps
from visionassist_seg.ops.intensity import apply_clahe, enhance_image, gamma_correct, gamma_table
from visionassist_seg.ops.labels import pupil_mask, spatial_weights
from visionassist_seg.ops.sample import HEIGHT, WIDTH, PreprocessedSample, check_raw_pair, preprocess_sample

__all__ = [
    "HEIGHT",
    "WIDTH",
    "PreprocessedSample",
    "apply_clahe",
    "check_raw_pair",
    "distance_maps",
    "enhance_image",
    "gamma_correct",
    "gamma_table",
    "preprocess_sample",
    "pupil_mask",
    "spatial_weights",
]
