"""``arfx bench model`` on the real model and a real face, with few runs (speed is not judged
here, only that every provider gets a row and the numbers are sane)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import onnxruntime as ort
import pytest

from arfx.benchmarks import BenchRow, bench_model, bench_table
from arfx.cli import EXIT_OK, main
from arfx.model import ModelError
from tests.conftest import data_root, require
from tests.test_model_runtime import find_test_model


@pytest.fixture(scope="module")
def model_onnx() -> Path:
    return find_test_model()


@pytest.fixture(scope="module")
def rows(model_onnx) -> list[BenchRow]:
    obama = require(data_root() / "images" / "obama.jpg")
    return bench_model(model_onnx, batches=(1, 2), warmup=1, runs=3, image=obama)


def test_every_provider_gets_a_row(rows):
    available = ort.get_available_providers()
    infer = [r for r in rows if r.stage == "infer"]
    assert [(r.provider, r.batch) for r in infer] == [(p, b) for p in available for b in (1, 2)]
    for row in infer:
        if row.status == "ok":
            assert row.runs == 3 and row.threads == os.cpu_count()
            assert 0 < row.median_ms <= row.p95_ms
        else:  # a GPU provider this machine cannot load: a reason, not a crash
            assert row.provider != "CPUExecutionProvider"
            assert row.status.startswith("unavailable: ") and row.median_ms is None
    cpu = [r for r in infer if r.provider == "CPUExecutionProvider"]
    assert [r.status for r in cpu] == ["ok", "ok"]


def test_analyze_row_on_a_real_face(rows):
    (analyze,) = [r for r in rows if r.stage == "analyze"]
    assert analyze.status == "ok" and analyze.batch == 1 and analyze.runs == 3
    assert analyze.provider in ort.get_available_providers()
    (new,) = [r for r in rows if r.stage == "analyze new"]  # a new face: two model runs
    assert new.status == "ok" and new.runs == 3 and new.provider == analyze.provider
    cpu_infer = next(r for r in rows if r.provider == "CPUExecutionProvider" and r.batch == 1)
    if analyze.provider == "CPUExecutionProvider":  # crop + context + infer costs more
        assert analyze.median_ms > 0.5 * cpu_infer.median_ms


def test_table_and_json(rows):
    table = bench_table(rows)
    assert "CPUExecutionProvider" in table and "analyze" in table and "ms/face" in table
    for row in rows:
        if row.status != "ok":
            assert row.status in table
    assert [BenchRow(**json.loads(json.dumps(r.to_json()))) for r in rows] == rows


def test_unknown_provider_gets_a_reason(model_onnx):
    rows = bench_model(
        model_onnx, providers=["FooExecutionProvider"], batches=(1,), warmup=0, runs=1
    )
    assert rows[0].status.startswith("unavailable: ")
    assert "not in this onnxruntime" in rows[0].status


def test_missing_model_and_bad_arguments(tmp_path):
    with pytest.raises(ModelError, match="nowhere.onnx"):
        bench_model(tmp_path / "nowhere.onnx")
    with pytest.raises(ValueError):
        bench_model(tmp_path / "nowhere.onnx", runs=0)
    with pytest.raises(SystemExit):
        main(["bench", "model", "--batches", "0"])


def test_cli_bench_model(model_onnx, tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = ["bench", "model", "--model", str(model_onnx), "--runs", "2", "--warmup", "0"]
    assert main([*args, "--batches", "1", "--json", str(out)]) == EXIT_OK
    text = capsys.readouterr().out
    assert "CPUExecutionProvider" in text and f"wrote {out}" in text
    data = json.loads(out.read_text())
    assert {row["stage"] for row in data} == {"infer", "analyze", "analyze new"}
