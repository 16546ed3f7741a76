"""numpy's BLAS kept to one thread while sessions run.

numpy's OpenBLAS splits a large enough matrix product over a thread per core, and its
worker threads then spin, waiting for the next call, for a long while (about 0.1 s) before
they sleep. A session's frame has one such product (the lipstick hooks weigh the lip box's
pixels by luminance: an (N, 3) by (3,) product, above OpenBLAS's threading threshold at
1280x720) and then hands the cores to llvmpipe, ONNX Runtime and MediaPipe, which found one
of them taken: on the 2-core machine the 1280x720 composite of lipstick and hair colour took
54 ms instead of 35 (docs/performance.md, stop 26). The products a session makes are small;
one thread does them as fast.

``limit_blas_threads`` (when a Session starts): numpy's BLAS libraries use one thread from
then on, unless the environment sets their thread count itself (``OPENBLAS_NUM_THREADS``,
``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``BLIS_NUM_THREADS``: the application's own
choice), as ``arfx.heap`` does for glibc's settings.
"""

from __future__ import annotations

import os

THREAD_VARIABLES = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
)
"""Environment variables by which an application sets its BLAS threads itself."""


def limit_blas_threads() -> None:
    """One thread for the BLAS libraries loaded in this process (see the module text)."""
    if any(name in os.environ for name in THREAD_VARIABLES):
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
