#!/usr/bin/python3
"""face_dist.py - what real face embeddings look like, so the synthetic data
of the index benchmark (bench/clustered.h) can be made to match them.

  bench/face_dist.py [--visage build/visage] [--lfw DIR] [--lfw-people N] [--out FILE.json]

Embeds with `visage embed` (default embedder: dlib, 128-d) (a) every
single-face photo of ../shared/data/faces, labelled by the README's folder and
file names, and (b) up to 4 photos each of the first N people of LFW (dev)
who have at least 2 (the face nearest the image centre, as bench_lfw does).
Prints, per set, the same-person and different-person cosine distributions
(n, mean, sd, p1/p5/p50/p95/p99) as JSON lines; --out saves the LFW ones for
bench_clustered --fit. The photos with two faces in the shared set are left
out: which face is whom is not written down, and guessing it from the
embeddings would be circular. obama-240p / obama_small are the same photo as
obama-1080p: only 1080p counts as a person's photo; the near-duplicate
cosines are printed apart."""
import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.join(ROOT, "..", "shared", "data")


def shared_labels(faces_dir):
    """(path, person) for the shared photos with exactly one known person."""
    out = []
    train = os.path.join(faces_dir, "knn_examples", "train")
    for person in sorted(os.listdir(train)):
        for f in sorted(os.listdir(os.path.join(train, person))):
            out.append((os.path.join(train, person, f), person))
    test = os.path.join(faces_dir, "knn_examples", "test")
    for f, person in [("obama1.jpg", "obama"), ("alex_lacamoire1.jpg", "alex_lacamoire"),
                      ("johnsnow_test1.jpg", "kit_harington")]:
        out.append((os.path.join(test, f), person))
    for f in ["obama-1080p.jpg", "test_images/obama3.jpg", "test_images/obama_partial_face.jpg"]:
        out.append((os.path.join(faces_dir, f), "obama"))
    return out


def lfw_labels(lfw, people, per_person=4):
    """(path, person) for the first `people` LFW people with >= 2 photos."""
    out = []
    for person in sorted(os.listdir(lfw)):
        d = os.path.join(lfw, person)
        if not os.path.isdir(d):
            continue
        files = sorted(f for f in os.listdir(d) if f.endswith(".jpg"))
        if len(files) < 2:
            continue
        out += [(os.path.join(d, f), person) for f in files[:per_person]]
        people -= 1
        if people == 0:
            break
    return out


def embed(visage, models, paths):
    """Path -> unit embedding of the face nearest the image centre (None if no face)."""
    def run(chunk):
        cmd = [visage, "embed"] + (["--models", models] if models else []) + chunk
        r = subprocess.run(cmd, capture_output=True, text=True)
        res = {}
        for line in r.stdout.splitlines():
            j = json.loads(line)
            faces = j.get("faces") or []
            if not faces:
                res[j["file"]] = None
                continue
            cx, cy = j["width"] / 2, j["height"] / 2

            def dist(f):
                x, y, w, h = f["bbox"]
                return (x + w / 2 - cx) ** 2 + (y + h / 2 - cy) ** 2
            e = np.array(min(faces, key=dist)["embedding"], dtype=np.float64)
            res[j["file"]] = e / np.linalg.norm(e)
        return res
    chunks = [paths[i::2] for i in range(2)]  # the machine's 2 cores
    out = {}
    with ThreadPoolExecutor(2) as ex:
        for r in ex.map(run, [c for c in chunks if c]):
            out.update(r)
    return out


def stats(x):
    x = np.asarray(x)
    if len(x) == 0:
        return {"n": 0}
    p = np.percentile(x, [1, 5, 50, 95, 99])
    return {"n": int(len(x)), "mean": round(float(x.mean()), 4), "sd": round(float(x.std()), 4),
            "p1": round(float(p[0]), 4), "p5": round(float(p[1]), 4), "p50": round(float(p[2]), 4),
            "p95": round(float(p[3]), 4), "p99": round(float(p[4]), 4),
            "min": round(float(x.min()), 4), "max": round(float(x.max()), 4)}


def distributions(labelled, emb):
    """Same- and different-person cosines over all pairs of embedded photos."""
    items = [(emb[p], who) for p, who in labelled if emb.get(p) is not None]
    v = np.stack([e for e, _ in items])
    who = np.array([w for _, w in items])
    c = v @ v.T
    iu = np.triu_indices(len(items), 1)
    same = who[iu[0]] == who[iu[1]]
    return c[iu][same], c[iu][~same], len(items), len(set(who)), v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--visage", default=os.path.join(ROOT, "build", "visage"))
    ap.add_argument("--models", default=os.path.join(ROOT, "models"))
    ap.add_argument("--faces", default=os.path.join(SHARED, "faces"))
    ap.add_argument("--lfw", default=os.path.join(SHARED, "lfw-dev"))
    ap.add_argument("--lfw-people", type=int, default=300)
    ap.add_argument("--out")
    a = ap.parse_args()

    sl = shared_labels(a.faces)
    dups = [os.path.join(a.faces, f) for f in ["obama-1080p.jpg", "obama-240p.jpg", "obama_small.jpg"]]
    ll = lfw_labels(a.lfw, a.lfw_people) if os.path.isdir(a.lfw) else []
    emb = embed(a.visage, a.models, sorted(set([p for p, _ in sl + ll] + dups)))
    missed = sorted(p for p in emb if emb[p] is None)
    print(json.dumps({"bench": "face_dist", "missed": len(missed), "missed_files": missed[:20]}))

    results = {}
    for name, lab in [("shared_faces", sl), ("lfw_dev", ll)]:
        if not lab:
            continue
        same, diff, n, people, v = distributions(lab, emb)
        mean_norm = float(np.linalg.norm(v.mean(axis=0)))
        results[name] = {"same": stats(same), "diff": stats(diff)}
        print(json.dumps({"bench": "face_dist", "set": name, "embedder": "dlib", "dim": int(v.shape[1]),
                          "photos": n, "people": people, "norm_of_mean": round(mean_norm, 4),
                          "same": results[name]["same"], "diff": results[name]["diff"]}))
    d = [emb[p] for p in dups if emb.get(p) is not None]
    nd = [float(d[i] @ d[j]) for i in range(len(d)) for j in range(i + 1, len(d))]
    print(json.dumps({"bench": "face_dist", "set": "same_photo_resized", "cosines": [round(x, 4) for x in nd]}))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(results, f)


if __name__ == "__main__":
    sys.exit(main())
