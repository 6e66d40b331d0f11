"""The training-throughput benchmark (srnpose.training.throughput): its report's schema, the share formula,
the profile's arithmetic, and that it times training's own data path. No timing thresholds."""

import json

import numpy as np
import pytest
import torch

from srnpose.training import throughput as tp
from srnpose.training import throughput_experiments as tpx
from srnpose.training import throughput_text as tpt


@pytest.fixture(scope="module")
def tiny_report():
    entries = [tp.bench_entry("tiny", tp.StepOptions(threads=1)),
               tp.bench_entry("tiny", tp.StepOptions(channels_last=False, optimizer_impl="loop", threads=1,
                                                     batch_size=2), label="tiny variant")]
    return tp.throughput_report(entries, steps=2, warmup=1, rounds=1, matmul_repeats=2)


def test_report_schema(tiny_report):
    json.dumps(tiny_report)  # plain data
    assert {"cpu", "cores", "torch", "matmul_gflops_per_s", "loadavg_at_end"} <= set(tiny_report["machine"])
    assert [r["name"] for r in tiny_report["results"]] == ["tiny", "tiny variant"]
    base, variant = tiny_report["results"]
    assert base["preset"] == "tiny" and base["model"]["num_stages"] == 2 and base["model"]["input_size"] == 32
    assert base["batch_size"] == 4 and variant["batch_size"] == 2 and variant["threads"] == 1 and base["workers"] == 0
    assert variant["options"]["channels_last"] is False and variant["options"]["optimizer_impl"] == "loop"
    for r in tiny_report["results"]:
        assert str(r["threads"]) in tiny_report["machine"]["matmul_gflops_per_s"]
        for scope in ("compute", "end_to_end"):
            fig = r[scope]
            assert fig["steps"] == 2 and fig["samples_per_s"] > 0
            assert 0 < fig["step_ms"]["p50"] <= fig["step_ms"]["p90"]
    table = tpt.format_report(tiny_report)
    assert "tiny variant" in table and "render" in table and "not a bound" in table


def test_shares_follow_the_stated_formula(tiny_report):
    for r in tiny_report["results"]:
        matmul = tiny_report["machine"]["matmul_gflops_per_s"][str(r["threads"])]
        for scope in ("compute", "end_to_end"):
            fig = r[scope]
            expected = 3.0 * r["model"]["gflops"] * fig["samples_per_s"] / matmul
            assert fig["share_of_matmul"] == pytest.approx(expected, rel=1e-12)
            assert 0.0 <= fig["share_of_matmul"] < float("inf")
            assert fig["train_gflops_per_s"] == pytest.approx(3.0 * r["model"]["gflops"] * fig["samples_per_s"])
        # one round: its rate is the timed samples over the timed seconds; two full batches of the same size
        (round_rate,) = r["compute"]["round_samples_per_s"]
        assert round_rate == pytest.approx(r["batch_size"] * 1e3 / r["compute"]["step_ms"]["p50"])
    assert tp.paired_ratio(tiny_report, "tiny", "tiny") == pytest.approx(1.0)
    assert tp.share_of_matmul(0.0, 100.0, 50.0) == 0.0
    assert tp.share_of_matmul(0.1, 300.0, 60.0) == pytest.approx(1.5)  # above 1: a rate, not a bound


def test_profile_components_sum_to_the_step(tiny_report):
    for r in tiny_report["results"]:
        p = r["profile"]
        parts = p["components_ms"]
        assert list(parts) == ["reparam", "stem", "stage1", "stage2", "loss_backward", "optimizer", "metrics",
                               "other"]
        assert all(v >= 0.0 for v in parts.values())
        # two profiled steps: medians are means, so the components add up to the step exactly
        assert sum(parts.values()) == pytest.approx(p["step_ms"], rel=1e-9)
        assert list(p["components_cpu_ms"]) == list(parts)
        assert sum(p["components_cpu_ms"].values()) == pytest.approx(p["cpu_step_ms"], rel=1e-9)
        assert set(p["data_ms_per_sample"]) == {"render", "crop", "render_cpu", "crop_cpu"}
        assert p["data_ms_per_sample"]["render"] > 0 and p["data_ms_per_sample"]["crop"] > 0
        lim = r["limit"]
        data_ms = (p["data_ms_per_sample"]["render_cpu"] + p["data_ms_per_sample"]["crop_cpu"]
                   + p["collate_ms_per_batch"] / r["batch_size"])
        assert lim["data_cpu_ms_per_sample"] == pytest.approx(data_ms)
        assert lim["compute_cpu_ms_per_sample"] == pytest.approx(1e3 / r["compute"]["cpu_samples_per_s"])
        # no loader process: one core does both, one after the other
        assert lim["unshared_samples_per_s"] == pytest.approx(1e3 / (data_ms + lim["compute_cpu_ms_per_sample"]))
        assert lim["bound"] in ("data path", "compute")
        assert p["collate_ms_per_batch"] >= 0


def test_profiled_data_path_is_the_sample_source():
    from srnpose.data.sampling import build_source

    source, _, _ = build_source(tp.bench_config("tiny"))
    for g in (0, 7):
        sample, seconds = tp._timed_sample(source, g)
        expected = source[g]
        assert set(seconds) == {"render", "crop", "render_cpu", "crop_cpu"} and seconds["render"] > 0
        assert set(sample) == set(expected)
        for key in expected:
            np.testing.assert_array_equal(sample[key], expected[key])


def test_frame_reuse_crops_each_frame_several_times():
    from srnpose.data.sampling import build_source

    source, _, _ = build_source(tp.bench_config("tiny"))
    reused = tp._ReusedFrames(source, 2)
    first, second, third = reused[0], reused[1], reused[2]
    for key in ("depth", "joints_nrm", "joints_uvd"):  # sample 0 is the stream's sample 0
        np.testing.assert_array_equal(first[key], source[0][key])
    np.testing.assert_array_equal(second["joints_uvd"], first["joints_uvd"])  # sample 1: frame 0 again
    np.testing.assert_array_equal(third["joints_uvd"], source[1]["joints_uvd"])  # sample 2: frame 1


def test_stacked_candidate_has_the_release_flops():
    from srnpose.model import model_summary

    release = tp.bench_config("release-base")  # the one-stage network whose FLOPs the candidate matches
    stacked = tp.bench_config("stacked")
    assert stacked.model.num_stages == tp.STACKED_STAGES and stacked.data == release.data
    assert stacked.train == release.train
    g_release, g_stacked = model_summary(release.model)["gflops"], model_summary(stacked.model)["gflops"]
    assert abs(g_stacked / g_release - 1.0) < 0.05
    for w in (stacked.model.width - 1, stacked.model.width + 1):  # no other width is nearer
        g = model_summary(stacked.model.__class__(**{**stacked.model.__dict__, "width": w}))["gflops"]
        assert abs(g - g_release) >= abs(g_stacked - g_release)
    with pytest.raises(Exception, match="valid: .*stacked"):
        tp.bench_config("nonesuch")


def test_compare_training_same_seed_same_batches():
    one = tp.StepOptions(channels_last=False, threads=1)
    res = tpx.compare_training("tiny", {"fp32": one, "again": one,
                                       "channels_last": tp.StepOptions(channels_last=True, threads=1)},
                              steps=2, val_frames=4)
    runs = res["variants"]
    assert runs["again"]["loss"] == runs["fp32"]["loss"]  # deterministic: same seed, same batches
    assert runs["again"]["val_stage_mm"] == runs["fp32"]["val_stage_mm"]
    # channels-last convolutions reorder sums: the same loss to float rounding
    assert runs["channels_last"]["loss"][0] == pytest.approx(runs["fp32"]["loss"][0], rel=1e-4)
    assert len(runs["fp32"]["val_stage_mm"]) == 2


def test_reparam_cost_keys():
    cost = tpx.reparam_cost(tp.bench_config("tiny"), batch_size=2, repeats=2)
    assert set(cost) == {"points", "encode", "encode_backward"} and all(v > 0 for v in cost.values())
    assert torch.get_num_threads() == 1  # restored (conftest sets 1)


def test_cli_benchmark_train(tmp_path, capsys, monkeypatch):
    from srnpose.cli import main

    monkeypatch.setattr(tp, "training_threads", lambda cfg, workers: 1)  # one thread beside the other tests
    out = tmp_path / "train.json"
    assert main(["benchmark", "--train", "--presets", "tiny", "--steps", "1", "--rounds", "1",
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [r["name"] for r in report["results"]] == ["tiny"]
    assert report["results"][0]["compute"]["steps"] == 1 and "profile" in report["results"][0]
    assert "share = 3 x forward GFLOPs" in capsys.readouterr().out
    assert main(["benchmark", "--train", "--presets", "nonesuch"]) == 2
    assert "valid: " in capsys.readouterr().err
    assert main(["benchmark", "--presets", "tiny"]) == 2  # --presets goes with --train
