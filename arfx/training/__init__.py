"""Training-data side of the multitask face model (see docs/face-model.md).

``splits`` fixes which items are held out, ``prepare`` runs the slow teachers (face mesh, head
pose, hair segmentation) once into a compact cache, and ``dataset`` / ``augment`` turn that
cache into model-ready crops. Everything except ``prepare`` needs only numpy and OpenCV, so it
runs in a training environment without MediaPipe.
"""
