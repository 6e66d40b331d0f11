"""benchmarks/ablation.py end to end on the tiny preset: the table's rows, and a rerun that skips."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ablation.py"


def _load_script(path: Path = SCRIPT):
    spec = importlib.util.spec_from_file_location(path.stem + "_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _markdown_rows(text: str) -> dict[str, list[str]]:
    rows = [line.strip("|").split("|") for line in text.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells] for cells in rows[1:]}  # rows[0]: the header


def test_ablation_two_variants_then_rerun_skips(tmp_path, capsys, monkeypatch):
    ablation = _load_script()
    out = tmp_path / "abl"
    argv = ["--preset", "tiny", "--steps", "4", "--test-frames", "4", "--fps-frames", "3",
            "--variants", "stages-1", "--out", str(out)]  # the default is added: rows compare with it

    assert ablation.main(argv) == 0
    text = capsys.readouterr().out
    rows = _markdown_rows(text)
    assert list(rows) == ["default", "stages-1"]
    columns = list(ablation.COLUMNS)
    default, single = rows["default"], rows["stages-1"]
    assert len(default[columns.index("per-stage mm")].split(" / ")) == 3  # one error per stage
    assert len(single[columns.index("per-stage mm")].split(" / ")) == 1
    assert default[columns.index("steps")] == single[columns.index("steps")] == "4"
    results = json.loads((out / ablation.RESULTS_FILE).read_text())["variants"]
    diff = results["stages-1"]["final_mm"] - results["default"]["final_mm"]
    assert single[columns.index("vs default mm")].startswith(f"{diff:+.2f} ± ")
    for v in results.values():  # the per-frame errors (for the paired standard error) average to the table's
        scored = [mm for mm in v["frame_mm"] if mm is not None]
        assert len(v["frame_mm"]) == 4 and abs(sum(scored) / len(scored) - v["final_mm"]) < 0.01
    assert float(single[columns.index("network FPS")]) > 0

    # benchmarks/paired_errors.py re-renders the same test frames and finds the table's difference
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # it imports ablation's per-frame errors
    paired = _load_script(SCRIPT.parent / "paired_errors.py")
    assert paired.main([str(out / "default" / "eval"), str(out / "stages-1" / "eval")]) == 0
    last = capsys.readouterr().out.splitlines()[-1].split()
    assert last[0] == str(out / "stages-1" / "eval") and abs(float(last[2]) - diff) < 0.01
    assert paired.main([str(out / "default" / "eval"), str(out / "stages-1" / "eval"), "--by-scene"]) == 0
    lines = capsys.readouterr().out.splitlines()  # per scene family: the counts and the frame-weighted gap add up
    heads = [(i, int(line.rsplit("(", 1)[1].split()[0])) for i, line in enumerate(lines) if line.endswith("frames)")]
    assert heads[0][1] == 4 and sum(n for _, n in heads[1:]) == 4
    gaps = [(n, float(lines[i + 3].split()[2])) for i, n in heads[1:]]
    assert abs(sum(n * g for n, g in gaps) / 4 - diff) < 0.01
    with pytest.raises(SystemExit, match="not an evaluation folder"):
        paired.main([str(out / "default"), str(out / "stages-1" / "eval")])

    weights = out / "stages-1" / "last" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert ablation.main(argv) == 0  # same command: nothing trains, evaluates or times again
    again = capsys.readouterr().out
    assert "already trained, skipped: default, stages-1" in again
    assert "training " not in again and "evaluating " not in again and "timing " not in again
    assert _markdown_rows(again) == rows
    assert weights.stat().st_mtime_ns == stamp

    # another budget in the same folder is refused, naming the folder
    assert ablation.main(argv[:2] + ["--steps", "5"] + argv[4:]) == 2
    assert str(out) in capsys.readouterr().err
    # an unknown variant is refused, listing the valid ones
    assert ablation.main(argv[:6] + ["--variants", "stages-9", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "stages-9" in err and "heatmap2d-depth" in err


if __name__ == "__main__":
    pytest.main([__file__])
