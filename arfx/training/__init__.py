"""Training-data side of the multitask face model (see docs/face-model.md).

``splits`` fixes which items are held out, ``prepare`` runs the slow teachers (face mesh, head
pose, hair segmentation) once into a compact cache, and ``dataset`` / ``augment`` turn that
cache into model-ready crops. Everything except ``prepare`` and ``fit_points68`` (the mesh
refinement of the exported model's 68 points, made in the runtime install) needs only numpy
and OpenCV, so it runs in a training environment without MediaPipe.
"""
