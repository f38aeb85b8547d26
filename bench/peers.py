#!/usr/bin/python3
"""peers.py - the peers of our approximate index on the same data: hnswlib
and FAISS IndexHNSWFlat / IndexHNSWSQ (8-bit) from Debian's packages
(apt-get install python3-hnswlib python3-faiss; run with /usr/bin/python3).

  build/bench_clustered --points 100000 --out /tmp/c.vscl
  bench/peers.py /tmp/c.vscl [--m 16] [--ef-construction 200] [--ef 10,20,40,80,160]
                 [--only hnswlib,faiss_hnsw_flat,faiss_hnsw_sq8] [--no-delete] [--skip-1-thread-build]
  bench/peers.py --table OUT.jsonl...   (a markdown table of earlier outputs)

Prints one JSON line per measured configuration, in the issue 11 contract:
{"bench":"search","index","points","ef_search","recall_at_10","p50_ms","p99_ms",
"qps_2_threads","build_s","rss_mb"} plus build_s_1_thread / build_s_2_threads;
the after-delete lines are {"bench":"delete","phase":"after_delete_30pct",...}.
build/bench_index_search --peers runs this script on its own data in the same run.
recall_at_10 is against numpy's exact inner product over the same points.
p50/p99 are one query at a time on one thread, timed around the library call
(Python's call overhead, a few microseconds, is in them). rss_mb is the
process RSS right after the build (the data set itself is ~n*dim*4 bytes of
it). After deleting 30 % of the points: hnswlib marks them deleted (a soft
delete: they are skipped in results but stay in the graph) and a fresh
hnswlib build on the remaining 70 % is the reference; FAISS HNSW has no
delete (remove_ids is not implemented for IndexHNSW), so it has no row."""
import argparse
import gc
import json
import os
import struct
import sys
import time

import numpy as np


def load(path):
    """The bench_clustered file: base points, their people, queries."""
    with open(path, "rb") as f:
        if f.read(4) != b"VSCL":
            raise SystemExit(f"{path}: not a bench_clustered file")
        ver, n, q, dim, people = struct.unpack("<5I", f.read(20))
        if ver != 1:
            raise SystemExit(f"{path}: version {ver}, expected 1")
        base = np.fromfile(f, np.float32, n * dim).reshape(n, dim)
        who = np.fromfile(f, np.int32, n)
        queries = np.fromfile(f, np.float32, q * dim).reshape(q, dim)
    return base, who, queries, people


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return -1


def exact_topk(base, queries, k=10, ids=None):
    """Exact top-k ids by inner product (the vectors are unit: cosine)."""
    out = np.empty((len(queries), k), np.int64)
    for i in range(0, len(queries), 100):
        s = queries[i:i + 100] @ base.T
        top = np.argpartition(-s, k, axis=1)[:, :k]
        out[i:i + 100] = top if ids is None else ids[top]
    return out


def recall(found, truth):
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def timed_queries(search_one, queries):
    """p50/p99 ms of one query at a time, and the answers."""
    lat, res = [], []
    for qv in queries:
        t0 = time.perf_counter()
        res.append(search_one(qv[None, :]))
        lat.append((time.perf_counter() - t0) * 1e3)
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 99)), np.vstack(res)


def emit(bench="search", **kw):
    """One JSON line; "search" lines are the contract's fresh-index configurations, "delete" the after-delete ones."""
    kw = {"bench": bench, **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in kw.items()}}
    print(json.dumps(kw), flush=True)


def run_exact(base, queries, truth):
    lat = []
    for qv in queries[:200]:
        t0 = time.perf_counter()
        s = base @ qv
        np.argpartition(-s, 10)[:10]
        lat.append((time.perf_counter() - t0) * 1e3)
    emit(index="exact", points=len(base), ef_search=0, recall_at_10=1.0, p50_ms=float(np.percentile(lat, 50)),
         p99_ms=float(np.percentile(lat, 99)), qps_2_threads=None, build_s=0.0, rss_mb=rss_mb(), note="numpy matmul")


def build_hnswlib(base, m, efc, threads, ids=None):
    import hnswlib
    ix = hnswlib.Index(space="ip", dim=base.shape[1])
    ix.init_index(max_elements=len(base), M=m, ef_construction=efc, random_seed=100)
    ix.set_num_threads(threads)
    t0 = time.perf_counter()
    ix.add_items(base, np.arange(len(base)) if ids is None else ids, num_threads=threads)
    return ix, time.perf_counter() - t0


def hnswlib_search(ix, queries, ef, threads):
    ix.set_ef(max(ef, 10))
    ix.set_num_threads(threads)
    return ix.knn_query(queries, k=10, num_threads=threads)[0]


def bench_hnswlib(a, base, queries, truth):
    b1 = None
    if not a.skip_1_thread_build:
        ix, b1 = build_hnswlib(base, a.m, a.ef_construction, 1)
        del ix
        gc.collect()
    ix, b2 = build_hnswlib(base, a.m, a.ef_construction, 2)
    mem = rss_mb()
    for ef in a.ef:
        p50, p99, found = timed_queries(lambda q: hnswlib_search(ix, q, ef, 1), queries)
        t0 = time.perf_counter()
        hnswlib_search(ix, queries, ef, 2)
        qps = len(queries) / (time.perf_counter() - t0)
        emit(index="hnswlib", points=len(base), ef_search=ef, recall_at_10=recall(found, truth), p50_ms=p50, p99_ms=p99,
             qps_2_threads=qps, build_s=b2, build_s_1_thread=b1, build_s_2_threads=b2, rss_mb=mem, m=a.m,
             ef_construction=a.ef_construction)
    if a.no_delete:
        return
    rng = np.random.default_rng(7)
    gone = rng.choice(len(base), int(0.3 * len(base)), replace=False)
    keep = np.setdiff1d(np.arange(len(base)), gone)
    for i in gone:
        ix.mark_deleted(int(i))
    truth_k = exact_topk(base[keep], queries, ids=keep)
    fresh, bf = build_hnswlib(base[keep], a.m, a.ef_construction, 2, ids=keep)
    for ef in a.ef:
        _, _, found = timed_queries(lambda q: hnswlib_search(ix, q, ef, 1), queries)
        _, _, ffound = timed_queries(lambda q: hnswlib_search(fresh, q, ef, 1), queries)
        emit(bench="delete", index="hnswlib", phase="after_delete_30pct", points=len(keep), ef_search=ef,
             recall_at_10=recall(found, truth_k), recall_at_10_fresh_build=recall(ffound, truth_k),
             deleted_returned=int(np.isin(found, gone).sum()), p50_ms=None, rss_mb=rss_mb(), fresh_build_s=bf,
             note="mark_deleted (soft): points stay in the graph")


def build_faiss(kind, base, m, efc, threads):
    import faiss
    faiss.omp_set_num_threads(threads)
    d = base.shape[1]
    if kind == "faiss_hnsw_flat":
        ix = faiss.IndexHNSWFlat(d, m, faiss.METRIC_INNER_PRODUCT)
    else:
        ix = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, m, faiss.METRIC_INNER_PRODUCT)
    ix.hnsw.efConstruction = efc
    t0 = time.perf_counter()
    if not ix.is_trained:
        ix.train(base)
    ix.add(base)
    return ix, time.perf_counter() - t0


def bench_faiss(kind, a, base, queries, truth):
    import faiss
    b1 = None
    if not a.skip_1_thread_build:
        ix, b1 = build_faiss(kind, base, a.m, a.ef_construction, 1)
        del ix
        gc.collect()
    ix, b2 = build_faiss(kind, base, a.m, a.ef_construction, 2)
    mem = rss_mb()
    for ef in a.ef:
        ix.hnsw.efSearch = max(ef, 10)
        faiss.omp_set_num_threads(1)
        p50, p99, found = timed_queries(lambda q: ix.search(q, 10)[1], queries)
        faiss.omp_set_num_threads(2)
        t0 = time.perf_counter()
        ix.search(queries, 10)
        qps = len(queries) / (time.perf_counter() - t0)
        emit(index=kind, points=len(base), ef_search=ef, recall_at_10=recall(found, truth), p50_ms=p50, p99_ms=p99,
             qps_2_threads=qps, build_s=b2, build_s_1_thread=b1, build_s_2_threads=b2, rss_mb=mem, m=a.m,
             ef_construction=a.ef_construction)
    emit(bench="delete", index=kind, phase="after_delete_30pct", points=len(base), ef_search=None, recall_at_10=None, p50_ms=None,
         rss_mb=mem, note="FAISS IndexHNSW has no delete (remove_ids not implemented): rebuild is the only way")


def table(paths):
    """A markdown table of the search lines of peers.py outputs (docs/system.md)."""
    print("| points | index | ef_search | recall@10 | p50 ms (1 thread) | p99 ms | QPS 2 threads | build s (1 / 2 threads) | RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in paths:
        for line in open(path):
            j = json.loads(line)
            if j.get("bench") != "search" or j.get("phase") or j.get("recall_at_10") is None:
                continue
            qps = "-" if j.get("qps_2_threads") is None else f"{j['qps_2_threads']:.0f}"
            b1 = j.get("build_s_1_thread")
            build = f"{'-' if b1 is None else f'{b1:.0f}'} / {j.get('build_s_2_threads', 0):.0f}"
            print(f"| {j['points']} | {j['index']} | {j['ef_search']} | {j['recall_at_10']:.4f} | {j['p50_ms']:.3f} | "
                  f"{j['p99_ms']:.3f} | {qps} | {build} | {j['rss_mb']} |")


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--table":
        return table(sys.argv[2:])
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--ef", default="10,20,40,80,160")
    ap.add_argument("--only", default="exact,hnswlib,faiss_hnsw_flat,faiss_hnsw_sq8")
    ap.add_argument("--no-delete", action="store_true")
    ap.add_argument("--skip-1-thread-build", action="store_true", help="build with 2 threads only (1M points)")
    a = ap.parse_args()
    a.ef = [int(x) for x in a.ef.split(",")]
    base, _, queries, people = load(a.file)
    truth = exact_topk(base, queries)
    import faiss
    import hnswlib  # noqa: F401 (fail early when missing)
    print(json.dumps({"bench": "peers", "points": len(base), "dim": base.shape[1], "queries": len(queries),
                      "people": people, "faiss": faiss.__version__, "numpy": np.__version__}), flush=True)
    only = a.only.split(",")
    if "exact" in only:
        run_exact(base, queries, truth)
    if "hnswlib" in only:
        bench_hnswlib(a, base, queries, truth)
        gc.collect()
    for kind in ["faiss_hnsw_flat", "faiss_hnsw_sq8"]:
        if kind in only:
            bench_faiss(kind, a, base, queries, truth)
            gc.collect()


if __name__ == "__main__":
    sys.exit(main())
