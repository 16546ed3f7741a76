"""A fake webcam: stands in for ``cv2.VideoCapture`` behind ``WebcamSource`` (a real camera
cannot exist on a test machine), with dropouts and reconnects on cue."""

from __future__ import annotations

import cv2


class FakeCamera:
    """Stands in for cv2.VideoCapture as ``capture_factory``: one physical camera.

    It serves ``frames`` in a loop. After ``disconnect_at`` successful reads it goes dark:
    reads fail and the next ``failed_reopens`` opens fail too (math.inf: it never returns).
    """

    def __init__(self, frames, *, disconnect_at=None, failed_reopens=0, fps=30.0, opens=True):
        self.frames = frames
        self.disconnect_at = disconnect_at
        self.failed_reopens = failed_reopens
        self.fps = fps
        self.opens_ok = opens
        self.served = 0
        self.opens = 0
        self.dark = False
        self.settings: dict[int, float] = {}

    def __call__(self, device):
        self.opens += 1
        if self.dark and self.failed_reopens > 0:
            self.failed_reopens -= 1
            return FakeCapture(self, opened=False)
        self.dark = False
        return FakeCapture(self, opened=self.opens_ok)


class FakeCapture:
    def __init__(self, camera: FakeCamera, opened: bool):
        self.camera = camera
        self.opened = opened

    def isOpened(self):  # noqa: N802 - the cv2.VideoCapture name
        return self.opened

    def read(self):
        cam = self.camera
        if not self.opened or cam.dark:
            return False, None
        if cam.disconnect_at is not None and cam.served == cam.disconnect_at:
            cam.dark = True
            cam.disconnect_at = None
            self.opened = False
            return False, None
        frame = cam.frames[cam.served % len(cam.frames)]
        cam.served += 1
        return True, frame.copy()

    def get(self, prop):
        height, width = self.camera.frames[0].shape[:2]
        values = {
            cv2.CAP_PROP_FRAME_WIDTH: width,
            cv2.CAP_PROP_FRAME_HEIGHT: height,
            cv2.CAP_PROP_FPS: self.camera.fps,
        }
        return float(values.get(prop, 0.0))

    def set(self, prop, value):
        self.camera.settings[prop] = value
        return True

    def release(self):
        self.opened = False
