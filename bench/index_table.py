#!/usr/bin/python3
"""index_table.py - markdown tables from build/bench_index_search output
(JSON lines; '#' lines and other text are skipped). stdlib only.

  bench/index_table.py bench/results/index_search_100k.txt [more files...]

Prints, per file: the search table (per index and ef: recall@10, p50 / p99
single-thread, QPS on 2 threads, RSS), the graph's build / open / delete
figures, and "QPS at equal recall": for recall@10 targets 0.95 and 0.98,
each index's first ef_search (in increasing order) whose recall reaches the
target - measured points, no interpolation - with its p50 and QPS, and the
ratios hnsw / hnswlib (QPS ratio, and hnswlib p50 / hnsw p50, both > 1 when
ours is faster)."""
import json
import sys

TARGETS = (0.95, 0.98)
ORDER = ("exact", "hnsw", "hnswlib", "faiss_hnsw_flat", "faiss_hnsw_sq8")


def read(path):
    """The JSON objects of a run, in order."""
    out = []
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def search_rows(rows):
    """The contract's search lines, ordered by index then ef."""
    s = [r for r in rows if r.get("bench") == "search" and not r.get("phase") and r.get("recall_at_10") is not None]
    rank = {k: i for i, k in enumerate(ORDER)}
    return sorted(s, key=lambda r: (r["points"], rank.get(r["index"], 99), r["ef_search"] or 0))


def print_search(rows):
    print("| points | index | M | ef_search | recall@10 | p50 ms (1 thread) | p99 ms | QPS (2 threads) | build s (1 / 2 threads) | RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in search_rows(rows):
        b1, b2 = r.get("build_s_1_thread"), r.get("build_s_2_threads")
        build = "-" if r["index"] == "exact" else f"{fmt(b1, '.0f')} / {fmt(b2 if b2 else None, '.0f')}"
        print(f"| {r['points']} | {r['index']} | {r.get('m', '-')} | {r['ef_search']} | {r['recall_at_10']:.4f} | "
              f"{fmt(r['p50_ms'], '.3f')} | {fmt(r.get('p99_ms'), '.3f')} | {fmt(r.get('qps_2_threads'), '.0f')} | "
              f"{build} | {r['rss_mb']} |")


def print_other(rows):
    """Build, open and delete figures of the graph and the peers' deletes."""
    for r in rows:
        if r.get("bench") == "build":
            print(f"\n- build (hnsw): {r['build_s_1_thread']} s on 1 thread ({r['inserts_per_s_1_thread']} inserts/s)"
                  + (f", {r['build_s_2_threads']} s with 2 inserter threads ({r['inserts_per_s_2_threads']}/s; writes are serialised)"
                     if r.get("build_s_2_threads") else "")
                  + f"; graph {r['graph_bytes_per_point']} B/point = {r['graph_to_float32_ratio']}x the float32 vectors "
                    f"({r['float32_bytes_per_point']} B/point); RSS {r['rss_mb']} MB incl. the float matrix"
                  + (f"; validate: {r['validate']}" if "validate" in r else ""))
        elif r.get("bench") == "open":
            print(f"- open (hnsw): {r['open_s']} s for a {r['file_mb']} MB file (save {r['save_s']} s); "
                  f"same top-10 after reload: {r['same_top10']}/{r['checked']}")
        elif r.get("bench") == "delete" and not r.get("phase"):
            print(f"- delete (hnsw): {r['deleted']} of {r['points']} at {r['deletes_per_s']}/s; validate: {r['validate']}")
    dels = [r for r in rows if r.get("bench") == "delete" and r.get("phase") and r.get("recall_at_10") is not None]
    if dels:
        print("\n| index | points left | ef_search | recall@10 after deleting 30 % | fresh build of the rest | gap | deleted returned |")
        print("|---|---|---|---|---|---|---|")
        for r in dels:
            fresh = r.get("recall_at_10_fresh_build")
            gap = None if fresh is None else fresh - r["recall_at_10"]
            print(f"| {r['index']} | {r['points']} | {r['ef_search']} | {r['recall_at_10']:.4f} | {fmt(fresh, '.4f')} | "
                  f"{fmt(gap, '+.4f')} | {r.get('deleted_returned', '-')} |")


def first_reaching(rows, index, points, target):
    """The first (lowest ef) search line of index reaching target, or None."""
    c = [r for r in search_rows(rows) if r["index"] == index and r["points"] == points and r["recall_at_10"] >= target]
    return c[0] if c else None


def print_equal_recall(rows):
    pts = sorted({r["points"] for r in search_rows(rows)})
    idx = [k for k in ORDER if k != "exact" and any(r["index"] == k for r in search_rows(rows))]
    print("\nQPS at equal recall (first ef_search reaching the target; measured points, not interpolated):\n")
    print("| points | recall@10 >= | index | ef_search | recall@10 | p50 ms | QPS (2 threads) |")
    print("|---|---|---|---|---|---|---|")
    ratios = []
    for p in pts:
        for t in TARGETS:
            for k in idx:
                r = first_reaching(rows, k, p, t)
                if r is None:
                    print(f"| {p} | {t} | {k} | not reached | | | |")
                else:
                    print(f"| {p} | {t} | {k} | {r['ef_search']} | {r['recall_at_10']:.4f} | {r['p50_ms']:.3f} | "
                          f"{fmt(r.get('qps_2_threads'), '.0f')} |")
            a, b = first_reaching(rows, "hnsw", p, t), first_reaching(rows, "hnswlib", p, t)
            if a and b:
                ratios.append(f"- {p} points, recall >= {t}: hnsw/hnswlib QPS {a['qps_2_threads'] / b['qps_2_threads']:.2f}x, "
                              f"p50 hnswlib/hnsw {b['p50_ms'] / a['p50_ms']:.2f}x (> 1: hnsw faster)")
    if ratios:
        print()
        print("\n".join(ratios))


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    for path in sys.argv[1:]:
        rows = read(path)
        print(f"### {path}\n")
        print_search(rows)
        print_other(rows)
        print_equal_recall(rows)
        print()


if __name__ == "__main__":
    main()
