"""Render the benchmark's results as markdown: medians, ratios, targets met or missed."""

from __future__ import annotations

import statistics
from typing import Any

MiB = 1024 * 1024


def _med(samples: list[dict[str, Any]] | None, key: str = "seconds") -> float | None:
    return statistics.median(s[key] for s in samples) if samples else None


def _fmt(value: float | None, unit: str = "s") -> str:
    if value is None:
        return "-"
    return f"{value:.2f} {unit}" if value < 100 else f"{value:.0f} {unit}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _of(medians: dict[str, dict[str, float]], op: str, contender: str) -> float | None:
    """The median of ``contender`` for ``op``, if measured."""
    return medians.get(op, {}).get(contender)


def _verdict(value: float | None, limit: float, lower_is_better: bool = True) -> str:
    if value is None:
        return "-"
    ok = value <= limit if lower_is_better else value >= limit
    return f"{value:.2f} {'✅' if ok else '❌'} (≤ {limit:g})"


def render(raw: dict[str, Any]) -> str:
    info, samples, counts = raw["info"], raw["samples"], raw["counts"]
    lines = [f"size: {info['size']}, repetitions: {info['reps']} (medians), one more through the counting proxy", ""]
    for workload, shape in info["workloads"].items():
        data = samples.get(workload, {})
        med = {op: {c: _med(ss) for c, ss in cs.items()} for op, cs in data.items()}
        rss = {op: {c: max(s["rss_mb"] for s in ss) for c, ss in cs.items()} for op, cs in data.items()}
        lines += [f"### {workload}: {shape['files']} files, {shape['bytes'] / MiB:.0f} MiB", ""]
        lines += ["| operation | gitfree | gitfree CLI | DVC+git | floor | gitfree / floor | gitfree / DVC+git |"]
        lines += ["| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for op in ("commit_cold", "commit_incremental", "commit_noop", "pull_cold", "pull_warm", "pull_same"):
            row = med.get(op, {})
            g, d, f = row.get("gitfree"), row.get("dvc+git"), row.get("floor")
            lines.append(
                f"| {op} | {_fmt(g)} | {_fmt(row.get('gitfree-cli'))} | {_fmt(d)} | {_fmt(f)} | "
                f"{_fmt(_ratio(g, f), 'x')} | {_fmt(_ratio(g, d), 'x')} |"
            )
        floor = med.get("md5", {}).get("floor"), med.get("s5cmd_upload", {}).get("floor")
        lines += [
            "",
            f"floor parts: md5 {_fmt(floor[0])}, s5cmd upload {_fmt(floor[1])}, s5cmd download "
            f"{_fmt(med.get('s5cmd_download', {}).get('floor'))}, boto3 x32 upload "
            f"{_fmt(med.get('boto3_upload_32', {}).get('floor'))} / download "
            f"{_fmt(med.get('boto3_download_32', {}).get('floor'))}; warm-pull floor is `cp -r`.",
            "",
        ]
        g = {op: med.get(op, {}).get("gitfree") for op in med}
        cold = g.get("commit_cold")
        wc = counts.get(workload, {})
        inc_up = wc.get("commit_incremental", {}).get("gitfree", {}).get("bytes_up")
        noop_req = wc.get("commit_noop", {}).get("gitfree", {}).get("requests")
        warm_down = wc.get("pull_warm", {}).get("gitfree", {}).get("bytes_down")
        peak = max((v for cs in rss.values() for c, v in cs.items() if c == "gitfree"), default=None)
        lines += [
            "| target | measured |",
            "| --- | --- |",
            f"| cold commit ≤ 1.5 x floor | {_verdict(_ratio(cold, _of(med, 'commit_cold', 'floor')), 1.5)} |",
            f"| cold commit ≤ 0.5 x DVC+git | {_verdict(_ratio(cold, _of(med, 'commit_cold', 'dvc+git')), 0.5)} |",
            f"| incremental ≤ 0.10 x cold | {_verdict(_ratio(g.get('commit_incremental'), cold), 0.10)}; "
            f"uploaded {inc_up if inc_up is not None else '-'} B on the wire |",
            f"| no-op ≤ 0.10 x cold | {_verdict(_ratio(g.get('commit_noop'), cold), 0.10)}; "
            f"{noop_req} requests (≤ 3) |",
            f"| cold pull ≤ 1.5 x floor | "
            f"{_verdict(_ratio(g.get('pull_cold'), _of(med, 'pull_cold', 'floor')), 1.5)} |",
            f"| cold pull ≤ 0.35 x DVC pull | "
            f"{_verdict(_ratio(g.get('pull_cold'), _of(med, 'pull_cold', 'dvc+git')), 0.35)} |",
            f"| warm pull ≤ 2 x cp -r | {_verdict(_ratio(g.get('pull_warm'), _of(med, 'pull_warm', 'floor')), 2)}; "
            f"{warm_down if warm_down is not None else '-'} B downloaded |",
            f"| pull onto the same version < 1 s | {_fmt(g.get('pull_same'))} |",
            f"| peak RSS ≤ 300 MB | {_fmt(peak, 'MB')} |",
            "",
        ]
        lines += ["requests and bytes on the wire (counting run):", ""]
        lines += [
            "| operation | contender | requests | by method | MiB up | MiB down | peak RSS |",
            "| --- | --- | ---: | --- | ---: | ---: | ---: |",
        ]
        for op, cs in sorted(wc.items()):
            for contender, c in sorted(cs.items()):
                if not c:
                    continue
                methods = ", ".join(f"{k} {v}" for k, v in sorted(c["by_method"].items()))
                lines.append(
                    f"| {op} | {contender} | {c['requests']} | {methods} | {c['bytes_up'] / MiB:.1f} | "
                    f"{c['bytes_down'] / MiB:.1f} | {_fmt(rss.get(op, {}).get(contender), 'MB')} |"
                )
        lines.append("")
    history = samples.get("history", {})
    if history:
        hc = counts.get("history", {})
        lines += [
            "### history: a dataset with many versions",
            "",
            "| operation | gitfree | requests | target |",
            "| --- | ---: | ---: | --- |",
        ]
        for op, target in (("log", "≤ 2 s"), ("resolve_latest", "≤ 3 requests"), ("resolve_number", "≤ 3 requests")):
            c = hc.get(op, {}).get("gitfree", {})
            lines.append(
                f"| {op} | {_fmt(_med(history.get(op, {}).get('gitfree')))} | {c.get('requests', '-')} | {target} |"
            )
        lines.append("")
    return "\n".join(lines)
