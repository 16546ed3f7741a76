"""``arfx batch``: a folder rendered by local worker processes and on a local Ray cluster."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from arfx.batch import BatchSettings, find_jobs, run_local, run_ray, summary_table
from arfx.chunks import plan_chunks
from arfx.cli import main
from arfx.session import Session

from .conftest import under_ci
from .helpers import decode, psnr

SETTINGS = BatchSettings(effects=("lipstick",))


def _folder(tmp_path: Path, video_path, names: list[str]) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in names:
        shutil.copy(video_path(name), folder / name)
    return folder


@pytest.fixture(scope="module")
def single_process(tmp_path_factory):
    """``reference(source)``: the file rendered by one Session in this process, once per
    file name for the whole module (several tests compare against the same renders)."""
    folder = tmp_path_factory.mktemp("reference")
    done: dict[str, Path] = {}

    def reference(source: Path) -> Path:
        if source.name not in done:
            path = folder / source.name
            with Session(list(SETTINGS.effects)) as session:
                session.render(source, path, progress=False)
            done[source.name] = path
        return done[source.name]

    return reference


def _same_as_single_process(reference: Path, output: Path, min_psnr: float = 50.0) -> None:
    a, b = decode(reference), decode(output)
    assert a.pts == b.pts and len(a.frames) == len(b.frames) > 0
    assert a.audio_packets == b.audio_packets
    assert min(psnr(x, y) for x, y in zip(a.frames, b.frames, strict=True)) > min_psnr


def test_find_jobs_mirrors_the_folder(tmp_path: Path) -> None:
    for name in ("a.mp4", "sub/b.mov", "sub/c.webm", "d.jpg", "notes.txt", ".hidden/e.mp4"):
        path = tmp_path / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    jobs = find_jobs(tmp_path / "in", tmp_path / "out")
    found = {job.source.relative_to(tmp_path / "in").as_posix(): job for job in jobs}
    assert set(found) == {"a.mp4", "d.jpg", "sub/b.mov", "sub/c.webm"}
    assert found["sub/c.webm"].output == tmp_path / "out" / "sub" / "c.mp4"
    assert found["sub/b.mov"].output == tmp_path / "out" / "sub" / "b.mov"


@pytest.mark.slow
def test_local_batch_matches_single_process_and_reports_failures(
    tmp_path: Path, video_path, single_process
) -> None:
    folder = _folder(tmp_path, video_path, ["single_face.mp4"])
    (folder / "broken.mp4").write_bytes(os.urandom(4096))
    out = tmp_path / "out"
    code = main(["batch", str(folder), str(out), "--workers", "2", "--retries", "1"])
    assert code == 1  # one file could not be rendered
    assert (out / "single_face.mp4").is_file()
    assert not (out / "broken.mp4").exists()
    assert not [p for p in out.iterdir() if "arfx-tmp" in p.name or "partial" in p.name]
    _same_as_single_process(single_process(folder / "single_face.mp4"), out / "single_face.mp4")
    results = run_local(find_jobs(folder, tmp_path / "again"), SETTINGS, retries=1)
    broken = next(r for r in results if r.source.endswith("broken.mp4"))
    assert (broken.status, broken.attempts) == ("failed", 2)
    assert "broken.mp4" in (broken.error or "")
    assert "1 of 2 rendered, 1 failed" in summary_table(results)


def _processes(wanted) -> list[int]:
    """Ids of the processes for which ``wanted(parent_pid, command_line)`` holds (/proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if wanted(int(stat.rsplit(")", 1)[1].split()[1]), command):
                pids.append(int(entry.name))
    return pids


def _batch_workers() -> list[int]:
    """This process's multiprocessing workers (not its resource tracker)."""
    return _processes(lambda parent, command: parent == os.getpid() and b"spawn_main" in command)


def _kill_first(find, after: float = 3.0, timeout: float = 60.0) -> list[int]:
    """Kill the first process ``find()`` returns once it has run ``after`` seconds."""
    killed: list[int] = []

    def hunt() -> None:
        deadline = time.monotonic() + timeout
        first_seen = None
        while time.monotonic() < deadline and not killed:
            pids = find()
            if pids and first_seen is None:
                first_seen = time.monotonic()
            if pids and time.monotonic() - first_seen >= after:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.1)

    thread = threading.Thread(target=hunt, daemon=True)
    thread.start()
    return killed


@pytest.mark.slow
def test_a_killed_local_worker_is_retried(tmp_path: Path, video_path, single_process) -> None:
    if not Path("/proc").is_dir():
        pytest.skip("needs /proc to find the worker")
    folder = _folder(tmp_path, video_path, ["single_face.mp4"])
    # Killed 1 s after it starts, while it still loads: on a quiet machine the whole
    # render of these 72 frames can end before 3 s, and a worker killed after sending its
    # result is not retried (its result stands).
    killed = _kill_first(_batch_workers, after=1.0)
    results = run_local(find_jobs(folder, tmp_path / "out"), SETTINGS, workers=1)
    assert killed, "the worker was not found"
    assert (results[0].status, results[0].attempts) == ("ok", 2)
    _same_as_single_process(
        single_process(folder / "single_face.mp4"), tmp_path / "out" / "single_face.mp4"
    )


def _ray_workers_rendering() -> list[int]:
    """Ray workers running a batch job (Ray names a task's process after its function)."""
    return _processes(lambda parent, command: command.startswith(b"ray::render_task"))


@pytest.fixture(scope="module")
def local_ray():
    if under_ci():
        import ray  # part of the test extra: its absence is a failure in CI
    else:
        ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_batch_matches_single_process(
    tmp_path: Path, video_path, local_ray, single_process
) -> None:
    """single_face.mp4 has one keyframe and goes whole; face_noface.mov is cut into three
    chunks at its keyframes (2.0 and 4.4 s), rendered as three tasks and joined."""
    folder = _folder(tmp_path, video_path, ["single_face.mp4", "face_noface.mov"])
    assert len(plan_chunks(folder / "face_noface.mov", seconds=2).chunks) == 3
    results = run_ray(find_jobs(folder, tmp_path / "out"), SETTINGS, chunk_seconds=2)
    assert [r.status for r in results] == ["ok", "ok"], summary_table(results)
    assert {Path(r.source).name: r.frames for r in results} == {
        "face_noface.mov": 169,
        "single_face.mp4": 72,
    }
    _same_as_single_process(
        single_process(folder / "single_face.mp4"), tmp_path / "out" / "single_face.mp4"
    )
    # Each chunk's encoder starts afresh: codec noise, not different pictures.
    _same_as_single_process(
        single_process(folder / "face_noface.mov"),
        tmp_path / "out" / "face_noface.mov",
        min_psnr=35,
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "face_noface.mov",
        "single_face.mp4",
    ]  # no chunk files left


@pytest.mark.slow
def test_a_killed_ray_worker_is_retried(
    tmp_path: Path, video_path, local_ray, single_process
) -> None:
    folder = _folder(tmp_path, video_path, ["single_face.mp4"])
    killed = _kill_first(_ray_workers_rendering, after=2.0)
    results = run_ray(find_jobs(folder, tmp_path / "out"), SETTINGS, retries=2)
    assert killed, "the Ray worker was not found"
    assert (results[0].status, results[0].attempts) == ("ok", 2), summary_table(results)
    _same_as_single_process(
        single_process(folder / "single_face.mp4"), tmp_path / "out" / "single_face.mp4"
    )


@pytest.mark.slow
def test_render_on_several_processes_matches_single_process(
    tmp_path: Path, video_path, single_process, capsys
) -> None:
    """``arfx render --workers 3`` cuts face_noface.mov (keyframes at 2.0 and 4.4 s) into
    chunks of about a third of its length: two, rendered by two processes and joined."""
    source = video_path("face_noface.mov")
    output = tmp_path / "out" / "face_noface.mov"
    code = main(["render", str(source), str(output), "--workers", "3"])
    out, err = capsys.readouterr()
    assert code == 0, out
    assert "169 frames" in out and "(2 chunks on 2 processes)" in out
    assert "face_noface.mov  169/169 frames" in err  # the workers' frames, counted here
    _same_as_single_process(single_process(source), output, min_psnr=35)
    assert [p.name for p in output.parent.iterdir()] == ["face_noface.mov"]  # no chunks left


def test_render_parallel_names_what_is_wrong(tmp_path: Path) -> None:
    from arfx.errors import ArfxError
    from arfx.parallel import render_parallel

    missing = tmp_path / "missing.mp4"
    with pytest.raises(ArfxError, match="missing.mp4"):
        render_parallel(missing, tmp_path / "out.mp4", SETTINGS, workers=2)
    with pytest.raises(ArfxError, match="workers must be an integer >= 1, got 0"):
        render_parallel(missing, tmp_path / "out.mp4", SETTINGS, workers=0)
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_local_batch_renders_long_videos_in_chunks(
    tmp_path: Path, video_path, single_process
) -> None:
    """Locally too, --chunk-seconds cuts face_noface.mov into three chunks (tasks of the
    pool), joined like the Ray ones; a chunk that keeps failing fails its file and leaves
    no chunk files behind."""
    folder = _folder(tmp_path, video_path, ["face_noface.mov"])
    results = run_local(find_jobs(folder, tmp_path / "out"), SETTINGS, chunk_seconds=2)
    assert [(r.status, r.frames) for r in results] == [("ok", 169)], summary_table(results)
    _same_as_single_process(
        single_process(folder / "face_noface.mov"), tmp_path / "out" / "face_noface.mov", 35
    )
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["face_noface.mov"]
    broken = BatchSettings(effects=("no_such_effect",))
    (failed,) = run_local(find_jobs(folder, tmp_path / "bad"), broken, retries=0, chunk_seconds=2)
    assert failed.status == "failed" and "no_such_effect" in (failed.error or "")
    assert not (tmp_path / "bad").exists() or not list((tmp_path / "bad").iterdir())
