"""Renders the measurements of scripts/bench.sh into docs/benchmarks.md.

    report.py OUT DOC WALL_SECONDS SECTION...

OUT holds hyperfine's JSON exports and the controller benches' output; each SECTION's
block between `<!-- bench:SECTION -->` and `<!-- /bench:SECTION -->` in DOC is replaced,
as is the `machine` block; the rest of DOC (the hand-written prose) is kept. DOC is
replaced at once (a temporary file renamed over it).
"""
import datetime
import json
import math
import os
import platform
import re
import subprocess
import sys

STORES = [
    ("yaml", "flat", "flat YAML"),
    ("yaml", "nested", "nested YAML"),
    ("json", "flat", "flat JSON"),
    ("json", "nested", "nested JSON"),
    ("env", "flat", "dotenv"),
    ("ini", "sections", "INI, sections of 100"),
]
NO_ROPS = "— (rops has no dotenv or INI store)"


def load(out, name):
    path = os.path.join(out, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def results(out, name):
    """{command name: result} of one benchmark: the times of its rounds (hyperfine exports
    `<name>.r1.json`, `.r2.json`, ...) pooled, and their median, mean, min and max."""
    pooled = {}
    directory, base = os.path.split(os.path.join(out, name))
    if not os.path.isdir(directory):
        return {}
    for file in sorted(os.listdir(directory)):
        if not re.fullmatch(re.escape(base) + r"\.r\d+\.json", file):
            continue
        with open(os.path.join(directory, file)) as f:
            for r in json.load(f)["results"]:
                p = pooled.setdefault(r["command"], {"command": r["command"], "times": [], "exit_codes": []})
                p["times"] += r["times"]
                p["exit_codes"] += r.get("exit_codes") or []
    for p in pooled.values():
        t = p["times"]
        p["median"], p["mean"], p["min"], p["max"] = median(t), sum(t) / len(t), min(t), max(t)
        p["stddev"] = (sum((x - p["mean"]) ** 2 for x in t) / max(len(t) - 1, 1)) ** 0.5
    return pooled


def timed_out(result):
    return any(code == 124 for code in (result.get("exit_codes") or []))


def failed(result):
    return any(code not in (0, 124) for code in (result.get("exit_codes") or []))


def ms(seconds):
    v = seconds * 1000
    if v < 10:
        return "%.1f ms" % v
    if v < 1000:
        return "%.0f ms" % v
    return "%.2f s" % seconds


def ratio(a, b, lower_bound=False):
    r = a / b
    text = "%.1f×" % r if r < 100 else "%.0f×" % r
    return ("> " + text) if lower_bound else text


def git(*args):
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def stamp():
    commit = git("rev-parse", "--short", "HEAD")
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += " with uncommitted changes"
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return now, commit


def machine(out, wall, sections):
    model, cores, mem = "?", os.cpu_count(), "?"
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        model = re.search(r"model name\s*:\s*(.*)", text).group(1)
        flags = re.search(r"flags\s*:\s*(.*)", text).group(1).split()
        if "avx512ifma" in flags:
            model += " (AVX-512 IFMA)"
        with open("/proc/meminfo") as f:
            kib = int(re.search(r"MemTotal:\s*(\d+)", f.read()).group(1))
        mem = "%.0f GiB" % (kib / 1024 / 1024)
    except (OSError, AttributeError):
        pass
    now, commit = stamp()
    load_start = open(os.path.join(out, "load-start")).read().split()[:3] if os.path.exists(
        os.path.join(out, "load-start")) else ["?"]
    with open("/proc/loadavg") as f:
        load_end = f.read().split()[:3]
    rustc = subprocess.run(["rustc", "-V"], capture_output=True, text=True).stdout.strip()
    return "\n".join([
        "| | |",
        "|---|---|",
        f"| date | {now} |",
        f"| commit | {commit} |",
        f"| CPU | {model}, {cores} cores, {mem} |",
        f"| system | {platform.system()} {platform.release()}, {rustc} |",
        f"| load average (1, 5, 15 min) | at the start {' '.join(load_start)}; at the end {' '.join(load_end)} |",
        f"| sections | {', '.join(sections)}; whole script {wall // 60} min {wall % 60} s |",
    ])


def startup(out):
    rows = ["| command | median | mean ± σ | min |", "|---|---|---|---|"]
    res = results(out, "startup/trivial")
    for name, r in res.items():
        if failed(r):
            rows.append(f"| `{name}` | failed | | |")
            continue
        rows.append(f"| `{name}` | {ms(r['median'])} | {ms(r['mean'])} ± {r['stddev'] * 1000:.2f} ms | {ms(r['min'])} |")
    binary = load(out, "startup/binary") or {}
    floor = res.get("hello world, static")
    text = "\n".join(rows)
    if binary:
        text += (f"\n\nThe gitseal binary: {binary['size'] / 1048576:.1f} MiB, "
                 f"{binary['relocations']:,} dynamic relocations; rops: "
                 f"{binary['rops_size'] / 1048576:.1f} MiB.")
    if floor:
        text += (f" Floor (a static Rust hello world): {ms(floor['median'])}. 300 runs each, "
                 "in 3 rounds taking the commands in turn, each after 20 warm-up runs.")
    return text


def slope(points):
    """Growth exponent: slope of log(time) over log(values) from the first to the last size."""
    (n0, t0), (n1, t1) = points[0], points[-1]
    if n1 == n0 or t0 <= 0:
        return None
    return math.log(t1 / t0) / math.log(n1 / n0)


def sops(out, sizes):
    rows = [
        "| input | values | op | sops 3.11.0 | rops | gitseal | sops ÷ gitseal | rops ÷ gitseal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    series = {}  # (store label, op, tool) -> [(n, median, lower bound)]
    met = total = 0
    worst = None
    for n in sizes:
        for ext, shape, label in STORES:
            for op in ("encrypt", "decrypt"):
                base = f"sops/{ext}-{shape}-{n}-{op}"
                ours = results(out, base)
                peer = results(out, base + "-sops").get("sops")
                g, r = ours.get("gitseal"), ours.get("rops")
                if not g:
                    continue
                cells = []
                if peer and timed_out(peer):
                    cells += [f"> {peer['max']:.0f} s"]
                    sops_ratio = ratio(peer["max"], g["median"], True)
                    series.setdefault((label, op, "sops"), []).append((n, peer["max"], True))
                elif peer and not failed(peer):
                    cells += [ms(peer["median"])]
                    sops_ratio = ratio(peer["median"], g["median"])
                    series.setdefault((label, op, "sops"), []).append((n, peer["median"], False))
                else:
                    cells += ["failed"]
                    sops_ratio = "—"
                if r and not failed(r):
                    cells += [ms(r["median"])]
                    rops_ratio = ratio(r["median"], g["median"])
                    total += 1
                    q = r["median"] / g["median"]
                    met += q >= 2
                    if worst is None or q < worst[0]:
                        worst = (q, f"{label}, {n:,} values, {op}")
                    series.setdefault((label, op, "rops"), []).append((n, r["median"], False))
                elif r:
                    cells += ["failed"]
                    rops_ratio = "—"
                else:
                    cells += [NO_ROPS if n == sizes[0] else "—"]
                    rops_ratio = "—"
                series.setdefault((label, op, "gitseal"), []).append((n, g["median"], False))
                cells += [f"**{ms(g['median'])}**", sops_ratio, rops_ratio]
                rows.append(f"| {label} | {n:,} | {op} | " + " | ".join(cells) + " |")
    text = "\n".join(rows)
    if total:
        text += (f"\n\nGoal, gitseal at most half of rops' time (rops ÷ gitseal ≥ 2): met on {met} of "
                 f"{total} rows; the lowest ratio {worst[0]:.2f}× ({worst[1]}).")
    if len(sizes) > 1:
        rows = [f"Growth exponent (slope of log time over log values, {sizes[0]:,} → {sizes[-1]:,} "
                "values; 1 = linear; start-up flattens the fast tools' slopes):", "",
                "| input | op | sops 3.11.0 | rops | gitseal |", "|---|---|---|---|---|"]
        for _, _, label in STORES:
            for op in ("encrypt", "decrypt"):
                cells = []
                for tool in ("sops", "rops", "gitseal"):
                    points = series.get((label, op, tool), [])
                    if len(points) < 2 or points[0][0] != sizes[0] or points[-1][0] != sizes[-1]:
                        cells.append("—")
                        continue
                    k = slope([(n, t) for n, t, _ in points])
                    bound = points[-1][2]
                    cells.append(("≥ " if bound else "") + ("%.2f" % k if k is not None else "—"))
                if any(c != "—" for c in cells):
                    rows.append(f"| {label} | {op} | " + " | ".join(cells) + " |")
        text += "\n\n" + "\n".join(rows)
    return text


def table(res, base_name, label):
    base = res.get(base_name)
    rows = [f"| {label} | median | min–max | ÷ gitseal |", "|---|---|---|---|"]
    for name, r in res.items():
        if failed(r):
            rows.append(f"| {name} | failed (exit status {r['exit_codes'][0]}) | | |")
            continue
        q = ratio(r["median"], base["median"]) if base else "—"
        rows.append(f"| {name} | {ms(r['median'])} | {ms(r['min'])}–{ms(r['max'])} | {q} |")
    return "\n".join(rows)


def sealing(out):
    seal = results(out, "sealing/seal10")
    reseal = results(out, "sealing/reseal")
    text = table(seal, "kubeseal (gitseal)", "sealing a 10-key Secret, whole process (2 rounds of 50 runs)")
    if "kubeseal (gitseal)" in seal:
        m = seal["kubeseal (gitseal)"]["median"] * 1000
        text += f"\n\nGoal ≤ 2 ms median for gitseal: {'met' if m <= 2 else 'not met'} ({m:.2f} ms)."
    text += "\n\n" + table(reseal, "gitseal", "resealing 1,000 SealedSecrets (3 rounds of 1 run each, in turn)")
    return text


def result_line(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        for line in f:
            if line.startswith("RESULT "):
                return json.loads(line[len("RESULT "):])
    return None


def calls(per_verb):
    if not per_verb:
        return "—"
    verbs = ", ".join(f"{v} {n:.2f}" for v, n in sorted(per_verb.items()) if v != "total")
    return f"{per_verb.get('total', 0):.2f} ({verbs})"


def controller(out):
    sign = None
    path = os.path.join(out, "controller/openssl.txt")
    if os.path.exists(path):
        lines = open(path).read().splitlines()
        for i, line in enumerate(lines):
            if line.startswith("rsa 4096 bits"):
                header = lines[i - 1].split()
                values = line.split()[3:]
                sign = float(values[header.index("sign/s")])
    cores = os.cpu_count()
    scale = result_line(os.path.join(out, "controller/scale.txt"))
    es = result_line(os.path.join(out, "controller/external_secrets.txt"))
    rows = ["| scenario | result | goal |", "|---|---|---|"]
    if scale:
        n = scale["objects"]
        floor = 3 * n / (sign * cores) if sign else None
        against = f"; {scale['cold_s'] / floor:.2f}× the RSA floor" if floor else ""
        rows += [
            f"| cold start: {n:,} SealedSecrets of 3 items → Secrets ({3 * n:,} RSA-4096 decryptions) | "
            f"**{scale['cold_s']:.1f} s** ({n / scale['cold_s']:.0f} per second){against} | ≤ 1.25× the floor |",
            f"| restart, every Secret current | **{scale['restart_s']:.1f} s**, {scale['restart_rsa']:.0f} RSA operations | "
            "≤ 10 s, zero RSA |",
            f"| peak RSS, cold / restart | {scale['cold_rss_mib']:.1f} / {scale['restart_rss_mib']:.1f} MiB | ≤ 64 MiB |",
            f"| API calls per SealedSecret, cold | {calls(scale['cold_calls'])} | |",
            f"| API calls per SealedSecret, restart | {calls(scale['restart_calls'])} | |",
        ]
        if floor:
            rows.append(f"| RSA floor: {3 * n:,} private-key operations ÷ ({sign:,.0f}/s × {cores} cores), "
                        f"`openssl speed -seconds 3 rsa4096` in this run | {floor:.1f} s | |")
    if es:
        n, s = es["objects"], es["sops"]
        rows += [
            f"| cold start: {n:,} ExternalSecrets (AWS Secrets Manager in moto, {es['secrets']:,} remote "
            f"secrets) and {s:,} SopsSecrets, together | ExternalSecrets **{es['cold_es_s']:.1f} s**, "
            f"SopsSecrets **{es['cold_sops_s']:.1f} s** | ≤ 60 s; ≤ 20 s |",
            f"| restart after 2 h down: all {n:,} ExternalSecrets refreshed | {es['refresh_s']:.1f} s, "
            f"{es['refresh_calls']:.0f} provider calls | ≤ {es['secrets'] // 20} calls |",
            f"| a new ExternalSecret synced during that refresh (median of 5) | {es['new_latency_s']:.2f} s | ≤ 2 s |",
            f"| SopsSecrets decrypted in that restart | {es['restart_decryptions']:.0f} | 0 |",
            f"| peak RSS, cold / restart | {es['cold_rss_mib']:.1f} / {es['restart_rss_mib']:.1f} MiB | ≤ 96 MiB |",
            f"| API calls per object, cold | {calls(es['cold_api'])} | |",
            f"| API calls per object, restart | {calls(es['restart_api'])} | |",
        ]
    return "\n".join(rows)


def replace(doc, name, body):
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if not pattern.search(doc):
        sys.exit(f"error: no {begin} … {end} block in the document")
    return pattern.sub(lambda _: f"{begin}\n{body}\n{end}", doc)


def main():
    out, path, wall, sections = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    sizes = sorted({int(m.group(1)) for f in os.listdir(os.path.join(out, "sops"))
                    for m in [re.match(r"[a-z]+-[a-z]+-(\d+)-", f)] if m}) if "sops" in sections else []
    with open(path) as f:
        doc = f.read()
    now, commit = stamp()
    header = f"_Measured {now} at {commit} (see the machine above)._\n\n"
    render = {"startup": lambda: startup(out), "sops": lambda: sops(out, sizes),
              "sealing": lambda: sealing(out), "controller": lambda: controller(out)}
    doc = replace(doc, "machine", machine(out, wall, sections))
    for name in sections:
        body = render[name]()
        print(body + "\n")
        doc = replace(doc, name, header + body)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(doc)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
