import json

import pytest
import torch

from srnpose.inference.bench import format_table, run_benchmark
from srnpose.model import SRN


@pytest.mark.parametrize("backends", [("torch", "onnxruntime", "onnxruntime-int8")])
def test_benchmark_report_schema(backends, shared_data):
    torch.manual_seed(0)
    model = SRN(num_stages=2, input_size=32, width=16, topk=8).eval()
    report = run_benchmark(model, backends=backends, frames=4, warmup=1, rounds=2,
                           data=shared_data / "kinect2", camera="kinect2", calibration_frames=2)
    json.dumps(report)  # plain data
    assert isinstance(report["model"]["params"], int) and isinstance(report["model"]["gflops"], float)
    assert {"cpu", "cores", "torch", "onnxruntime"} <= set(report["machine"])
    pairs = [(r["backend"], r["scope"]) for r in report["results"]]
    assert pairs == [(b, s) for b in backends for s in ("end_to_end", "network")]
    for r in report["results"]:
        assert r["fps"] > 0 and 0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p95"]
        assert r["frames"] == 4
        if r["scope"] == "end_to_end":
            assert set(r["breakdown_ms"]) == {"center", "crop", "network", "decode"}
    table = format_table(report)
    assert "1.00x" in table and "onnxruntime-int8" in table
    matmul = report["machine"]["matmul_gflops_per_s"]
    assert matmul > 0 and "x the matmul's rate" in table and "not a limit" in table and "%" not in table
    for r in report["results"]:  # the network's FLOP rate against the plain matmul's, one pass
        if r["scope"] == "network":
            # from the reported (rounded) p50, to the reported precision: exact on any machine's speed
            rate = report["model"]["gflops"] / (r["latency_ms"]["p50"] / 1e3)
            assert r["gflops_per_s"] == pytest.approx(rate, rel=1e-9, abs=0.005 + 1e-9)
            assert r["rate_vs_matmul"] == pytest.approx(rate / matmul, rel=1e-9, abs=5e-5 + 1e-9)


def test_benchmark_rejects_unknown_backend():
    from srnpose.cli import main

    assert main(["benchmark", "--backends", "torch,tensorrt"]) == 2


@pytest.mark.parametrize("decoy", [True, False], ids=["shared-decoy", "no-shared"])
def test_benchmark_times_the_shipped_sample_frames_by_default(tmp_path, monkeypatch, decoy):
    """Without --data: the shipped sample frames with their camera, whatever the working directory has beside
    it (a ../shared folder is not the user's); the report and the table say so."""
    from srnpose.inference.bench import benchmark_frames
    from srnpose.weights import samples

    work = tmp_path / "work"
    work.mkdir()
    if decoy:
        (tmp_path / "shared" / "data" / "kinect2").mkdir(parents=True)
        (tmp_path / "shared" / "data" / "kinect2" / "00000001.png").write_bytes(b"not a png")
    monkeypatch.chdir(work)
    shipped = samples()
    frames, cam, description = benchmark_frames()
    assert len(frames) == len(shipped) and all((f == s.depth).all() for f, s in zip(frames, shipped))
    assert (cam.name, cam.mirrored) == (shipped[0].camera, shipped[0].mirrored)
    assert description == f"the {len(shipped)} shipped sample frames (srnpose.samples(), camera {cam.name})"
    torch.manual_seed(0)
    model = SRN(num_stages=2, input_size=32, width=16, topk=8).eval()
    report = run_benchmark(model, backends=("torch",), frames=2, warmup=0, rounds=1)
    assert report["settings"]["data"] == description and f"data: {description}" in format_table(report)
    assert report["settings"]["hands_found"].endswith(f"/{len(shipped)}")


def test_benchmark_fit_row_gives_the_fits_share(shared_data):
    """--fit: a with_fit row per backend, end to end then the fit to the depth, with the fit's share."""
    torch.manual_seed(0)
    model = SRN(num_stages=2, input_size=32, width=16, topk=8).eval()
    report = run_benchmark(model, backends=("torch",), frames=3, warmup=1, rounds=1,
                           data=shared_data / "kinect2", camera="kinect2", fit=True)
    rows = {r["scope"]: r for r in report["results"]}
    assert list(rows) == ["end_to_end", "network", "with_fit"]
    with_fit = rows["with_fit"]
    assert set(with_fit["breakdown_ms"]) == {"end_to_end", "fit"} and with_fit["lm_steps"] == 3
    parts = with_fit["breakdown_ms"]
    assert 0 < with_fit["fit_share"] < 1 and parts["fit"] > 0
    assert with_fit["fit_share"] == pytest.approx(parts["fit"] / (parts["end_to_end"] + parts["fit"]), abs=2e-3)
    assert "of the frame, 3 LM steps" in format_table(report)
