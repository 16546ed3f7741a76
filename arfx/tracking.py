"""Face tracking: MediaPipe face mesh landmarks, stable face ids and head pose per frame."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

import cv2
import mediapipe as mp
import numpy as np

from .checks import check_integer, is_number
from .frame import as_rgb8
from .pose import HeadPose, PoseEstimator

MIN_IMAGE_SIDE = 32
"""Images with a side shorter than this hold no usable face (and MediaPipe may crash on 1x1)."""

# Eye corners (outer, inner) of the face mesh; their midpoints do not move with gaze.
_EYE_CORNERS = ((33, 133), (362, 263))

Box = tuple[float, float, float, float]


@dataclass
class TrackerOptions:
    """How a FaceTracker finds and follows faces."""

    max_faces: int = 4
    refine_landmarks: bool = True
    """True: 478 points with iris; False: 468."""
    static_images: bool = False
    """True: detect on every frame (unrelated photos); False: track from frame to frame."""
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    min_match_iou: float = 0.3
    """Box IoU with a face of the previous frame needed to keep its id."""
    focal_length: float | None = None
    """Camera focal length in pixels for head pose; None = max(width, height)."""
    small_faces: bool = True
    """Also find faces too small for the face mesh's own detector, which misses faces under
    about a tenth of the frame's width (a 100-pixel face in 1280x720): MediaPipe's
    full-range face detector looks for them, and each is followed by running the mesh on a
    square crop around it, scaled up (``SmallFaces``)."""
    small_face_interval: int = 10
    """In video, while fewer than ``max_faces`` faces are followed, the frames between two
    looks for small faces (about 5 ms at 1280x720 on a 2-core CPU). Photos are always
    searched."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first option that is out of range."""
        check_integer("max_faces", self.max_faces, 1)
        for name in ("refine_landmarks", "static_images", "small_faces"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("min_detection_confidence", "min_tracking_confidence"):
            value = getattr(self, name)
            if not is_number(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        if not is_number(self.min_match_iou) or not 0.0 < self.min_match_iou <= 1.0:
            raise ValueError(
                f"min_match_iou must be a number in (0, 1], got {self.min_match_iou!r}"
            )
        check_integer("small_face_interval", self.small_face_interval, 1)
        if self.focal_length is not None and (
            not is_number(self.focal_length) or not self.focal_length > 0
        ):
            raise ValueError(
                f"focal_length must be None or a positive number of pixels, got "
                f"{self.focal_length!r}"
            )


@dataclass
class Face:
    """One tracked face in one frame.

    ``landmarks`` is (478, 3) float32 (468 without refine_landmarks): x, y in frame pixels and z
    MediaPipe's relative depth scaled by the frame width (smaller = nearer the camera). Points
    may lie outside the frame when the face is cut by its border. ``box`` (x0, y0, x1, y1) is
    the landmarks' bounding box in pixels, not clipped to the frame. ``analysis`` is the face
    model's result for this face (``arfx.model.FaceAnalysis``: parsing, occlusion, 68 points,
    pose) when the session runs the model, else None. When the session stabilises faces,
    ``landmarks``, ``box`` and ``pose`` are the filtered values and ``raw_landmarks`` the
    tracker's own points of this frame (None: not stabilised).
    """

    id: int
    landmarks: np.ndarray
    box: Box
    pose: HeadPose
    analysis: Any = None
    raw_landmarks: np.ndarray | None = None

    @property
    def center(self) -> tuple[float, float]:
        """Centre of the box, pixels."""
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2.0, (y0 + y1) / 2.0

    @property
    def size(self) -> float:
        """Longer side of the box, pixels: the scale to size effects by."""
        x0, y0, x1, y1 = self.box
        return max(x1 - x0, y1 - y0)

    @property
    def inter_ocular(self) -> float:
        """Distance between the eye centres (midpoints of each eye's corners), pixels."""
        (a, b), (c, d) = _EYE_CORNERS
        left = (self.landmarks[a, :2] + self.landmarks[b, :2]) / 2.0
        right = (self.landmarks[c, :2] + self.landmarks[d, :2]) / 2.0
        return float(np.linalg.norm(right - left))


class FaceTracker:
    """Finds faces in RGB frames and follows them with stable ids.

    Ids are matched from frame to frame by box overlap, so they survive MediaPipe returning
    faces in another order; a face that is lost keeps its id never again (ids only grow, per
    tracker). Use as a context manager, or call close(), to free the MediaPipe graph.
    """

    def __init__(self, options: TrackerOptions | None = None) -> None:
        self.options = replace(options) if options is not None else TrackerOptions()
        self.options.validate()
        self._pose = PoseEstimator(focal_length=self.options.focal_length)
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=self.options.static_images,
            max_num_faces=self.options.max_faces,
            refine_landmarks=self.options.refine_landmarks,
            min_detection_confidence=self.options.min_detection_confidence,
            min_tracking_confidence=self.options.min_tracking_confidence,
        )
        self._small = SmallFaces(self.options) if self.options.small_faces else None
        self._previous: list[Face] = []
        self._next_id = 0

    def track(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 HxWx3 image (other layouts are converted), sorted by id.

        Frames are taken as consecutive frames of one video unless static_images is set; call
        reset() at a scene cut. A frame without faces ends every current track.
        """
        if self._mesh is None:
            raise ValueError("FaceTracker is closed")
        image = as_rgb8(image, "image")
        height, width = image.shape[:2]
        if min(height, width) < MIN_IMAGE_SIDE:
            self._previous = []
            return []
        result = self._mesh.process(image)
        scale = np.array([width, height, width], dtype=np.float32)
        all_landmarks = [
            np.array([(p.x, p.y, p.z) for p in face.landmark], dtype=np.float32) * scale
            for face in result.multi_face_landmarks or []
        ]
        if self._small is not None:
            room = self.options.max_faces - len(all_landmarks)
            all_landmarks += self._small.track(image, all_landmarks, room)
        boxes = [_landmark_box(landmarks) for landmarks in all_landmarks]
        matches = match_boxes(
            [face.box for face in self._previous], boxes, self.options.min_match_iou
        )
        faces = []
        for landmarks, box, match in zip(all_landmarks, boxes, matches, strict=True):
            if match is None:
                face_id, previous_pose = self._next_id, None
                self._next_id += 1
            else:
                face_id, previous_pose = self._previous[match].id, self._previous[match].pose
            pose = self._pose.estimate(landmarks, (width, height), previous_pose)
            faces.append(Face(id=face_id, landmarks=landmarks, box=box, pose=pose))
        faces.sort(key=lambda face: face.id)
        self._previous = faces
        return faces

    def reset(self) -> None:
        """Forget all tracks and MediaPipe's tracking state (a scene cut): faces get new ids."""
        if self._mesh is not None:
            self._mesh.reset()
        if self._small is not None:
            self._small.reset()
        self._previous = []

    def close(self) -> None:
        """Free the MediaPipe graphs. Idempotent."""
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None
        if self._small is not None:
            self._small.close()
        self._previous = []

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


SMALL_CROP = 256
"""Pixels across the square crop a small face's mesh runs on."""
SMALL_CROP_SCALE = 2.0
"""A small face's crop is this many times its landmarks' longer side (or, when first found,
the detector's box side), centred on it: room for the mesh's own detector and for the face
to move until the next frame."""
MIN_SMALL_FACE = 32.0
"""Pixels across the smallest face kept: smaller ones carry too little for effects, and the
head pose's PnP solver fails on them."""
SMALL_OVERLAP = 0.3
"""A detection or crop face overlapping a face already found by more than this (box IoU)
is that face."""


class SmallFaces:
    """Faces the face mesh's own (short-range) detector is too coarse to see.

    ``mp.solutions.face_mesh`` looks for faces in the whole frame shrunk to 128 pixels, so a
    face under about a tenth of the frame's width is not found. MediaPipe's full-range face
    detector (bundled with ``mediapipe``, no download) finds faces down to about 65 pixels
    in 1280x720; each one found is then followed frame to frame by running the face mesh
    on a ``SMALL_CROP``-pixel crop around where it was, scaled up, where it is large. A face
    the main mesh finds itself (it came closer) is left to it.
    """

    def __init__(self, options: TrackerOptions) -> None:
        self.options = options
        self._detector: Any = None  # both made when first needed
        self._mesh: Any = None
        self._followed: list[np.ndarray] = []  # the small faces' landmarks, last frame
        self._since_search = options.small_face_interval  # search on the first frame

    def track(self, image: np.ndarray, found: list[np.ndarray], room: int) -> list[np.ndarray]:
        """The landmarks of the small faces in ``image`` that are not among ``found`` (the
        main mesh's faces), at most ``room`` of them."""
        if room <= 0:
            self._followed = []
            return []
        boxes = [_landmark_box(landmarks) for landmarks in found]
        faces: list[np.ndarray] = []

        def follow(box: Box) -> None:
            """The mesh around ``box``, kept when it finds a face no other face covers."""
            if len(faces) >= room or _overlaps(box, boxes):
                return
            landmarks = self._mesh_in(image, _centre(box), _side(box))
            if landmarks is not None:
                found_box = _landmark_box(landmarks)
                if not _overlaps(found_box, boxes):
                    faces.append(landmarks)
                    boxes.append(found_box)

        for previous in self._followed:
            follow(_landmark_box(previous))  # skipped where the main mesh has it now
        self._since_search += 1
        due = self.options.static_images or self._since_search >= self.options.small_face_interval
        if due and len(faces) < room:
            self._since_search = 0
            for box in self._detect(image):
                follow(box)
        self._followed = faces
        return faces

    def _detect(self, image: np.ndarray) -> list[Box]:
        """Face boxes from the full-range detector, most confident first, in pixels.

        The detector sees its input shrunk to 192 pixels, so a large frame is searched in
        overlapping square tiles (``detection_tiles``), where a small face is larger."""
        if self._detector is None:
            self._detector = mp.solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=self.options.min_detection_confidence
            )
        found = []
        for x, y, side_x, side_y in detection_tiles(image.shape[1], image.shape[0]):
            tile = np.ascontiguousarray(image[y : y + side_y, x : x + side_x])
            result = self._detector.process(tile)
            for detection in result.detections or []:
                box = detection.location_data.relative_bounding_box
                x0, y0 = x + box.xmin * side_x, y + box.ymin * side_y
                x1, y1 = x0 + box.width * side_x, y0 + box.height * side_y
                found.append((float(detection.score[0]), (x0, y0, x1, y1)))
        found.sort(key=lambda item: -item[0])
        boxes: list[Box] = []
        for _, box in found:
            if not _overlaps(box, boxes):  # the same face seen in two tiles
                boxes.append(box)
        return boxes

    def _mesh_in(
        self, image: np.ndarray, centre: tuple[float, float], side: float
    ) -> np.ndarray | None:
        """The face mesh run on a square crop ``SMALL_CROP_SCALE * side`` across around
        ``centre``, its landmarks in frame pixels (z in the same units as the main mesh's);
        None when it finds no face there, or one under ``MIN_SMALL_FACE``."""
        span = max(SMALL_CROP_SCALE * side, 8.0)
        scale = SMALL_CROP / span
        left, top = centre[0] - span / 2.0, centre[1] - span / 2.0
        to_crop = np.array([[scale, 0.0, -left * scale], [0.0, scale, -top * scale]])
        crop = cv2.warpAffine(
            image,
            to_crop,
            (SMALL_CROP, SMALL_CROP),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0),
        )
        if self._mesh is None:
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True,  # one graph for every small face: each crop is new
                max_num_faces=1,
                refine_landmarks=self.options.refine_landmarks,
                min_detection_confidence=self.options.min_detection_confidence,
            )
        result = self._mesh.process(crop)
        if not result.multi_face_landmarks:
            return None
        points = result.multi_face_landmarks[0].landmark
        normalised = np.array([(p.x, p.y, p.z) for p in points], dtype=np.float32)
        landmarks = normalised * np.float32(span)
        landmarks[:, 0] += np.float32(left)
        landmarks[:, 1] += np.float32(top)
        if _side(_landmark_box(landmarks)) < MIN_SMALL_FACE:
            return None
        return landmarks

    def reset(self) -> None:
        self._followed = []
        self._since_search = self.options.small_face_interval

    def close(self) -> None:
        for graph in (self._mesh, self._detector):
            if graph is not None:
                graph.close()
        self._mesh = self._detector = None
        self._followed = []


DETECTION_TILE = 720
"""Largest side of a tile the full-range detector searches (``detection_tiles``)."""
WHOLE_FRAME_DETECTION = 640
"""Frames whose longer side is at most this are searched whole: a face small enough to be
missed there is too small for effects."""


def detection_tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """(x, y, width, height) of the overlapping tiles that cover a frame for small-face
    detection: squares of side min(width, height, DETECTION_TILE), a quarter overlapping
    their neighbours; the whole frame when it is small."""
    if max(width, height) <= WHOLE_FRAME_DETECTION:
        return [(0, 0, width, height)]
    side = min(width, height, DETECTION_TILE)

    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        count = math.ceil((length - side) / (0.75 * side)) + 1
        step = (length - side) / (count - 1)
        return [int(round(i * step)) for i in range(count)]

    return [
        (x, y, min(side, width), min(side, height)) for y in starts(height) for x in starts(width)
    ]


def _centre(box: Box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0


def _side(box: Box) -> float:
    return max(box[2] - box[0], box[3] - box[1])


def _overlaps(box: Box, boxes: list[Box]) -> bool:
    return any(box_iou(box, other) > SMALL_OVERLAP for other in boxes)


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes; 0 when either is empty."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_boxes(previous: list[Box], current: list[Box], min_iou: float) -> list[int | None]:
    """For each current box, the index of the previous box it continues, or None.

    Greedy on IoU, best pair first, each box used once; pairs below ``min_iou`` never match.
    Greedy is enough for the few, rarely overlapping faces of a frame.
    """
    pairs = sorted(
        ((box_iou(p, c), i, j) for i, p in enumerate(previous) for j, c in enumerate(current)),
        key=lambda pair: (-pair[0], pair[1], pair[2]),
    )
    matches: list[int | None] = [None] * len(current)
    used: set[int] = set()
    for iou, i, j in pairs:
        if iou < min_iou:
            break
        if i not in used and matches[j] is None:
            matches[j] = i
            used.add(i)
    return matches


def _landmark_box(landmarks: np.ndarray) -> Box:
    x0, y0 = landmarks[:, :2].min(axis=0)
    x1, y1 = landmarks[:, :2].max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)
