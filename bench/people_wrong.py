#!/usr/bin/env python3
"""people_wrong.py - which faces make bench_people's wrong pairs (bench/people.c).

  python3 bench/people_wrong.py dump FILE      FILE from PEOPLE_DUMP / PEOPLE_DUMP_FINAL
      (name, truth, label per face): the clusters that hold more than one person,
      with their wrong pairs.
  python3 bench/people_wrong.py floor FILE...  FILE = the people_sims_of lines of
      `bench_people --lfw ... --sims-of /` (every face's 12 nearest): faces whose
      nearest stranger is >= 0.95 and above every photo of themselves.
"""
import collections
import json
import os
import sys


def dump(path):
    cl = collections.defaultdict(collections.Counter)
    for line in open(path):
        name, truth, label = line.rstrip('\n').split('\t')
        if int(label) < 0: continue
        person = os.path.basename(os.path.dirname(name)) or name
        cl[int(label)][person] += 1
    tot_pairs = wrong_total = 0
    rows = []
    for l, c in cl.items():
        n = sum(c.values()); tot_pairs += n*(n-1)//2
        same = sum(v*(v-1)//2 for v in c.values())
        wrong = n*(n-1)//2 - same
        wrong_total += wrong
        if wrong: rows.append((wrong, l, n, c))
    print(f"clusters {len(cl)} predicted_pairs {tot_pairs} wrong_pairs {wrong_total} precision {1-wrong_total/max(tot_pairs,1):.4f}")
    for wrong, l, n, c in sorted(rows, reverse=True):
        print(f"cluster {l} size {n} wrong_pairs {wrong}: " + ", ".join(f"{p} x{v}" for p, v in c.most_common()))


def floor(paths):
    for f in paths:
        rows=[json.loads(l) for l in open(f)]
        per=collections.Counter(r['face'].split('/')[0] for r in rows)
        n=0; bad=[]; hi=0
        for r in rows:
            me=r['face'].split('/')[0]
            if per[me] < 2: continue
            n+=1
            near=r['nearest']
            own=[x['sim'] for x in near if x['face'].split('/')[0]==me]
            strangers=[x for x in near if x['face'].split('/')[0]!=me]
            top_s=strangers[0]['sim'] if strangers else -1
            own_best=own[0] if own else None
            if top_s >= 0.95: hi+=1
            if top_s >= 0.95 and (own_best is None or top_s > own_best):
                bad.append((r['face'], strangers[0]['face'], top_s, own_best))
        print(f"{f}: faces with another photo of themselves {n}; nearest stranger >= 0.95: {hi}; and above every own photo in the top 12: {len(bad)}")
        for b in sorted(bad, key=lambda x:-x[2]): print("   ", b[0], "->", b[1], f"{b[2]:.3f}", "own best in top12:", b[3])


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("dump", "floor"):
        sys.exit(__doc__)
    dump(sys.argv[2]) if sys.argv[1] == "dump" else floor(sys.argv[2:])
