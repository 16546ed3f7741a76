"""Hands in front of the face: MediaPipe hand landmarks drawn as a soft frame-space mask.

A hand over the mouth is the commonest occluder in selfie video, and the one the face model
misses most (skin over skin). MediaPipe's hand tracker (bundled with ``mediapipe``, no
download) finds the 21 points of each hand; the mask is the palm polygon plus a capsule per
finger bone, as wide as a finger of that hand, anti-aliased. Effects read it as the
``hands`` mask (lipstick leaves it unpainted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import cv2
import mediapipe as mp
import numpy as np

from .checks import check_integer
from .frame import as_rgb8
from .tracking import MIN_IMAGE_SIDE

HAND_MASKS: tuple[str, ...] = ("hands",)
"""The mask names the hand tracker provides."""
HAND_POINTS = 21
_PALM = (0, 1, 2, 5, 9, 13, 17)
_BONES = (
    ((1, 2), (2, 3), (3, 4)),  # thumb, from its base
    ((5, 6), (6, 7), (7, 8)),
    ((9, 10), (10, 11), (11, 12)),
    ((13, 14), (14, 15), (15, 16)),
    ((17, 18), (18, 19), (19, 20)),
)
FINGER_WIDTH = 0.26
"""A finger's width, in knuckle spans (index to little finger knuckle, points 5 to 17)."""
THUMB_WIDTH = 1.15
"""The thumb's width relative to the other fingers'."""
MIN_SPAN_OF_LENGTH = 0.6
"""A hand seen edge-on has a short knuckle span: finger widths are sized from at least this
fraction of the palm's length (wrist to middle knuckle, points 0 to 9) instead."""
_SHIFT = 4  # sub-pixel bits for OpenCV's drawing: 1/16 pixel


@dataclass
class Hand:
    """One hand in one frame: ``landmarks`` (21, 2) float32 pixels (MediaPipe's order:
    wrist 0, thumb 1-4, index 5-8, middle 9-12, ring 13-16, little 17-20) and MediaPipe's
    confidence that it is a hand."""

    landmarks: np.ndarray
    score: float

    @property
    def finger_width(self) -> float:
        """Pixels across one finger of this hand."""
        points = self.landmarks
        span = float(np.linalg.norm(points[5] - points[17]))
        length = float(np.linalg.norm(points[0] - points[9]))
        return FINGER_WIDTH * max(span, MIN_SPAN_OF_LENGTH * length, 1.0)


@dataclass
class HandSearch:
    """When a video stream runs the hand tracker.

    Following a hand already found costs MediaPipe's landmark model; looking for one where
    none is costs its palm detector on the whole frame (about 12 ms of a 2-core CPU at
    640x360), which is wasted on the many frames with no hand in view. So with no hand
    followed, the tracker looks every ``every`` frames, and at once on a frame where the
    face model sees something in front of a face (``occluded``): a hand coming over the
    mouth is usually seen by the model first, and found by the tracker on that frame.
    """

    every: int = 3
    """Frames between searches while no hand is followed; 1 searches every frame."""
    _skipped: int = field(init=False)  # frames since the last search
    _following: bool = field(init=False)

    def __post_init__(self) -> None:
        check_integer("hand search interval", self.every, 1)
        self.reset()

    def due(self, occluded: bool = False) -> bool:
        """Whether to run the tracker on this frame; call :meth:`found` after running it."""
        if self._following or occluded or self._skipped + 1 >= self.every:
            self._skipped = 0
            return True
        self._skipped += 1
        return False

    @property
    def following(self) -> bool:
        """Whether a hand is followed: then the next frame runs the tracker, whatever the
        face model sees, so a live stream may start it before the model runs."""
        return self._following

    def found(self, hands: int) -> None:
        """How many hands the tracker returned on the frame it ran."""
        self._following = hands > 0

    def reset(self) -> None:
        """A new stream or a scene cut: search on the next frame."""
        self._skipped = self.every
        self._following = False


OCCLUDED_SHARE = 0.01
"""A face counts as occluded (for :class:`HandSearch`) when the face model gives more than
this share of its crop an occlusion probability above one half."""


def model_sees_occluder(occlusion: np.ndarray) -> bool:
    """Whether one face's occlusion map (the model's crop probabilities) shows something in
    front of the face."""
    return float(np.count_nonzero(occlusion > 0.5)) > OCCLUDED_SHARE * occlusion.size


class HandTracker:
    """Finds and follows up to ``max_hands`` hands in RGB frames (MediaPipe Hands, the light
    model). ``static_images``: detect in every frame (unrelated photos). A context manager;
    ``close()`` frees the MediaPipe graphs.

    MediaPipe's tracker runs its palm detector (about 9 ms of a 2-core CPU at 640x360) on
    every frame where it follows fewer hands than its maximum, so with the usual one hand in
    view and room for two it would look for the second on every frame. Here a graph whose
    maximum is the number of hands followed follows them (landmarks only, about 5 ms a
    hand), and the graph for ``max_hands`` looks for more every ``search_every`` frames; a
    new hand beside a followed one is found up to ``search_every - 1`` frames later. A
    followed hand the follower loses (a fast one) is looked for again in the same frame.
    ``search_every=1`` is MediaPipe's own behaviour.
    """

    def __init__(
        self,
        *,
        max_hands: int = 2,
        static_images: bool = False,
        min_confidence: float = 0.5,
        search_every: int = 3,
    ) -> None:
        check_integer("search_every", search_every, 1)
        self.max_hands = max_hands
        self.static_images = static_images
        self.min_confidence = min_confidence
        self.search_every = search_every
        self._graphs: dict[int, Any] = {}  # the most hands a graph follows -> the graph
        self._followed = 0  # hands the last call returned
        self._since_search = 0  # calls since the max_hands graph last ran
        self._closed = False
        self._graph(max_hands)  # MediaPipe's errors, if any, come now

    def _graph(self, most: int) -> Any:
        graph = self._graphs.get(most)
        if graph is None:
            graph = mp.solutions.hands.Hands(
                static_image_mode=self.static_images,
                max_num_hands=most,
                model_complexity=0,
                min_detection_confidence=self.min_confidence,
                min_tracking_confidence=self.min_confidence,
            )
            self._graphs[most] = graph
        return graph

    def _choose(self) -> int:
        """The maximum of the graph to run on this call: the number followed, or max_hands
        when that is none, all of them, or time to look for more."""
        followed = self._followed
        if self.static_images or followed in (0, self.max_hands):
            return self.max_hands
        if self._since_search + 1 >= self.search_every:
            return self.max_hands
        return followed

    def track(self, image: np.ndarray) -> list[Hand]:
        if self._closed:
            raise ValueError("HandTracker is closed")
        image = as_rgb8(image, "image")
        height, width = image.shape[:2]
        if min(height, width) < MIN_IMAGE_SIDE:
            return []
        most = self._choose()
        hands = self._run(most, image)
        if most < self.max_hands and len(hands) < most:
            # A fast hand slipped out of the follower's window: look for it in this frame.
            hands = self._run(self.max_hands, image)
        self._followed = len(hands)
        return hands

    def _run(self, most: int, image: np.ndarray) -> list[Hand]:
        graph = self._graph(most)
        self._since_search = 0 if most == self.max_hands else self._since_search + 1
        # A graph idle for a while still holds the hands it followed then. It is not reset:
        # MediaPipe's reset keeps memory (52 MB over the first two, 6 MB over the next 12),
        # and the landmark model finds no hand where none is left, so the palm detector
        # then looks in the whole frame anyway.
        result = graph.process(image)
        height, width = image.shape[:2]
        hands = []
        scores = result.multi_handedness or []
        for i, found in enumerate(result.multi_hand_landmarks or []):
            points = np.array([(p.x * width, p.y * height) for p in found.landmark], np.float32)
            score = float(scores[i].classification[0].score) if i < len(scores) else 1.0
            hands.append(Hand(points, score))
        return hands

    def reset(self) -> None:
        """Forget the hands being followed (a scene cut)."""
        for graph in self._graphs.values():
            graph.reset()
        self._followed = 0
        self._since_search = 0

    def close(self) -> None:
        for graph in self._graphs.values():
            graph.close()
        self._graphs = {}
        self._closed = True

    def __enter__(self) -> HandTracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def hand_mask(
    hands: list[Hand], size: tuple[int, int], *, out: np.ndarray | None = None
) -> np.ndarray:
    """HxW uint8 mask (``size`` = (height, width)) of ``hands``: 255 on the hand, with
    anti-aliased edges. Pass ``out`` to reuse a buffer (it is cleared first)."""
    height, width = size
    if out is None:
        out = np.zeros((height, width), np.uint8)
    else:
        out.fill(0)
    scale = float(1 << _SHIFT)
    for hand in hands:
        points = np.round(np.asarray(hand.landmarks, np.float64) * scale).astype(np.int32)
        palm = cv2.convexHull(points[list(_PALM)])
        cv2.fillConvexPoly(out, palm, 255, cv2.LINE_AA, _SHIFT)
        width_px = hand.finger_width
        for finger, bones in enumerate(_BONES):
            thickness = width_px * (THUMB_WIDTH if finger == 0 else 1.0)
            for a, b in bones:
                cv2.line(
                    out,
                    tuple(points[a]),
                    tuple(points[b]),
                    255,
                    max(int(round(thickness)), 1),
                    cv2.LINE_AA,
                    _SHIFT,
                )
            # The fingertip: the last point is the tip's centre, so round it off.
            tip = tuple(points[bones[-1][1]])
            cv2.circle(out, tip, int(round(thickness / 2 * scale)), 255, -1, cv2.LINE_AA, _SHIFT)
    return out
