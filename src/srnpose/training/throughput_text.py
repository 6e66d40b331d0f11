"""The training-throughput report as text: fixed-width tables of :func:`srnpose.training.throughput.throughput_report`."""

from __future__ import annotations

from srnpose.training.throughput import paired_ratio


def format_report(report: dict, baseline: str | None = None) -> str:
    """Fixed-width tables: rates per entry (compute in wall and in CPU seconds, and each end-to-end rate's
    ratio to ``baseline``'s, default the first entry, paired by round), the profile, and the limit."""
    results = report["results"]
    base = next((r for r in results if r["name"] == (baseline or results[0]["name"])), results[0])
    base_e2e = base.get("end_to_end", {}).get("samples_per_s")
    lines = [f"{'entry':<24} {'in':>3} {'w':>3} {'st':>2} {'GFLOPs':>7} {'B':>4} {'thr':>3} {'wrk':>3} "
             f"{'compute/s':>9} {'(CPU)':>7} {'share':>6} {'e2e/s':>7} {'share':>6} {'e2e vs ' + base['name'][:10]:>17}"]
    for r in results:
        m, c, e = r["model"], r.get("compute"), r.get("end_to_end")
        ratio = paired_ratio(report, r["name"], base["name"]) if e and base_e2e else None
        cpu = c.get("cpu_samples_per_s") if c else None
        lines.append(f"{r['name'][:24]:<24} {m['input_size']:>3} {m['width']:>3} {m['num_stages']:>2} "
                     f"{m['gflops']:>7.4f} {r['batch_size']:>4} {r['threads']:>3} {r['workers']:>3} "
                     + (f"{c['samples_per_s']:>9.1f} " if c else f"{'-':>9} ")
                     + (f"{cpu:>7.1f} " if cpu else f"{'-':>7} ")
                     + (f"{c['share_of_matmul']:>6.2f} " if c else f"{'-':>6} ")
                     + (f"{e['samples_per_s']:>7.1f} {e['share_of_matmul']:>6.2f} " if e else f"{'-':>7} {'-':>6} ")
                     + (f"{ratio:>16.2f}x" if ratio is not None else f"{'-':>17}"))
    profiled = [r for r in results if "profile" in r]
    if profiled:
        lines.append("")
        lines.append("where a compute step's time goes (median ms per step), and the data path (median ms per sample, "
                     "wall and CPU):")
        for r in profiled:
            p = r["profile"]
            parts = " ".join(f"{k} {v:.1f}" for k, v in p["components_ms"].items())
            d = p["data_ms_per_sample"]
            lines.append(f"  {r['name'][:24]:<24} step {p['step_ms']:.1f} = {parts}")
            cpu_parts = " ".join(f"{k} {v:.1f}" for k, v in p["components_cpu_ms"].items())
            lines.append(f"  {'(CPU ms)':<24} step {p['cpu_step_ms']:.1f} = {cpu_parts}")
            lines.append(f"  {'':<24} render {d['render']:.2f} (CPU {d['render_cpu']:.2f}), crop {d['crop']:.2f} "
                         f"(CPU {d['crop_cpu']:.2f}) per sample, collate {p['collate_ms_per_batch']:.1f} per batch")
    limited = [r for r in results if "limit" in r]
    if limited:
        lines.append("")
        lines.append("the limit, in CPU ms per sample (load-robust); unshared = a core per process, modelled:")
        for r in limited:
            lim = r["limit"]
            est = lim["unshared_samples_per_s"]
            lines.append(f"  {r['name'][:24]:<24} compute {lim['compute_cpu_ms_per_sample']:.2f}, data path "
                         f"{lim['data_cpu_ms_per_sample']:.2f} ({r['workers']} loader process"
                         f"{'es' if r['workers'] != 1 else ''}): {lim['bound']}-bound"
                         + (f", unshared about {est:.0f} samples/s end to end" if est else ""))
    mm = report["machine"]
    rates = ", ".join(f"{v:.1f} GFLOP/s on {k} thread{'s' if k != '1' else ''}"
                      for k, v in mm["matmul_gflops_per_s"].items())
    lines.append("")
    lines.append(f"share = 3 x forward GFLOPs x samples/s / same-run fp32 matmul ({rates}; not a bound)")
    load = [[round(float(x), 2) for x in mm[k]] if mm.get(k) else None for k in ("loadavg_at_start", "loadavg_at_end")]
    lines.append(f"machine: {mm['cpu']} ({mm['cores']} cores), torch {mm['torch']}, load average "
                 f"{load[0]} at start, {load[1]} at end")
    return "\n".join(lines)
