#!/usr/bin/env bash
# CLI contract tests (DESIGN.md "Command line"): visage detect / embed /
# compare on the shared photos and on broken files. JSON is checked with node.
set -uo pipefail
bin=$(realpath "${1:-build/visage}")
here=$(cd "$(dirname "$0")/../.." && pwd)
faces=$(realpath "$here/../shared/data/faces")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0; n=0
check() { # description, command...
  local what=$1; shift; n=$((n + 1))
  if "$@"; then echo "ok $n - $what"; else echo "not ok $n - $what"; fails=$((fails + 1)); fi
}
json() { node -e "$1" "$2"; }

# 1. embed two_people.jpg: two faces, 6 landmarks each, unit-length 128-d embeddings (dlib, the default)
"$bin" embed "$faces/two_people.jpg" >"$tmp/two.json" 2>"$tmp/two.err"
check "embed two_people exits 0" test $? = 0
check "embed two_people: 2 faces, landmarks, unit 128-d embeddings" json '
const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
if (j.faces.length !== 2 || j.width !== 1126 || j.height !== 661) process.exit(1);
for (const f of j.faces) {
  if (f.landmarks.length !== 6 || f.bbox.length !== 4 || !(f.det_score > 0.5) || !(f.quality >= 0 && f.quality <= 1)) process.exit(2);
  if (f.embedding.length !== 128) process.exit(3);
  const n = Math.sqrt(f.embedding.reduce((s, x) => s + x * x, 0));
  if (Math.abs(n - 1) > 1e-3) process.exit(4);
}' "$tmp/two.json"

# 2. a batch with broken files: each named on stderr, good files still processed, exit 1
: >"$tmp/empty.jpg"
head -c 4000 "$faces/obama_small.jpg" >"$tmp/truncated.jpg"
echo "not an image at all" >"$tmp/text.jpg"
cp "$faces/test_images/32bit.png" "$tmp/png_named.jpg"   # extension lies
head -c 3000 /dev/urandom >"$tmp/garbage.png"
"$bin" detect "$faces/obama_small.jpg" "$tmp/empty.jpg" "$tmp/truncated.jpg" "$tmp/text.jpg" \
  "$tmp/png_named.jpg" "$tmp/garbage.png" "$tmp/missing.jpg" >"$tmp/batch.out" 2>"$tmp/batch.err"
rc=$?
check "batch with bad files exits non-zero" test $rc != 0
check "good files of the batch still printed, in order" json '
const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
if (lines.length !== 2) process.exit(1);
if (!lines[0].file.endsWith("obama_small.jpg") || !lines[1].file.endsWith("png_named.jpg")) process.exit(2);
if (lines[0].faces.length !== 1 || lines[1].faces.length !== 1) process.exit(3);' "$tmp/batch.out"
for f in empty truncated text garbage missing; do
  check "stderr names $f and a reason" grep -qE "^visage: .*$f\.(jpg|png): .+" "$tmp/batch.err"
done
check "one stderr line per bad file" test "$(wc -l <"$tmp/batch.err")" = 5

# 3. compare: same person and different people
"$bin" compare "$faces/knn_examples/train/obama/obama.jpg" "$faces/knn_examples/test/obama1.jpg" >"$tmp/same.json"
check "compare obama/obama: same_person true" json '
const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
process.exit(j.same_person === true && j.similarity >= j.threshold ? 0 : 1);' "$tmp/same.json"
"$bin" compare "$faces/knn_examples/train/obama/obama.jpg" "$faces/knn_examples/train/biden/biden.jpg" >"$tmp/diff.json"
check "compare obama/biden: same_person false" json '
const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
process.exit(j.same_person === false && j.similarity < j.threshold ? 0 : 1);' "$tmp/diff.json"
"$bin" compare "$faces/obama_small.jpg" "$tmp/text.jpg" >/dev/null 2>"$tmp/cmp.err"
check "compare with a bad file fails naming it" test $? != 0 -a -s "$tmp/cmp.err"

# 4. models missing: a clear error naming the file and the fix
"$bin" detect --models "$tmp/nomodels" "$faces/obama_small.jpg" >/dev/null 2>"$tmp/nomodel.err"
check "missing models: non-zero exit" test $? != 0
check "missing models: names the file and fetch-models.sh" grep -q "nomodels/blazeface-back.json.*fetch-models" "$tmp/nomodel.err"

# 5. the embedded system from the command line: ingest the shared photos, then
#    search with obama1.jpg: Obama photos first (DESIGN.md CLI contract)
data="$tmp/data"
"$bin" ingest --data "$data" "$faces" >"$tmp/ingest.json" 2>"$tmp/ingest.err"
check "ingest of the shared folder exits 0" test $? = 0
check "ingest summary counts every photo" json '
const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
process.exit(j.images === 21 && j.processed === 21 && j.failed === 0 && j.faces_indexed >= 21 ? 0 : 1);' "$tmp/ingest.json"
"$bin" search --data "$data" --top-k 30 "$faces/knn_examples/test/obama1.jpg" >"$tmp/search.json"
check "search exits 0" test $? = 0
check "search: every Obama photo ranks above every other photo" json '
const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const obama = (r) => /obama|32bit\.png/.test(r.source_url) && !(/obama_and_biden/.test(r.source_url) && r.bbox[0] < 1000)
  || (/two_people/.test(r.source_url) && r.bbox[0] < 500);
const flags = j.results.map(obama);
if (!j.query_faces.length || !flags.length || !flags[0]) process.exit(1);
process.exit(flags.lastIndexOf(true) < flags.indexOf(false) ? 0 : 2);' "$tmp/search.json"
"$bin" ingest --data "$data" "$faces/knn_examples/test/obama1.jpg" >"$tmp/again.json" 2>/dev/null
check "ingesting the same photo again is an exact duplicate, not a new face" json '
const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
process.exit(j.duplicates === 1 && j.processed === 0 ? 0 : 1);' "$tmp/again.json"
"$bin" serve --data "$data" --listen 0.0.0.0:0 >/dev/null 2>"$tmp/open.err" &
pid=$!; sleep 1; kill $pid 2>/dev/null; wait $pid 2>/dev/null
check "open mode refuses a non-loopback listen address" grep -q "refusing to listen" "$tmp/open.err"

# 5b. erasure of a person: a dry run lists the 11 photos of Obama (obama_small.jpg
#     scores them >= 0.62, everyone else <= 0.53), then they go, and a block keeps
#     a new copy out
"$bin" erase --data "$data" --dry-run "$faces/obama_small.jpg" >"$tmp/dry.json"
check "erase --dry-run lists exactly the Obama photos and erases nothing" json '
const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const ob = j.images.filter((i) => /obama|32bit\.png|two_people/.test(i.source_url));
process.exit(j.dry_run && j.images.length === 11 && ob.length === 11 && j.images_erased === 0 ? 0 : 1);' "$tmp/dry.json"
"$bin" erase --data "$data" "$faces/two_people.jpg" >/dev/null 2>"$tmp/erase.err"; rc=$?
check "erase of a two-face photo without --face-index exits 1 naming the option" test $rc = 1 -a -n "$(grep -- '--face-index' "$tmp/erase.err")"
"$bin" erase --data "$data" --threshold 0.1 "$faces/obama_small.jpg" >/dev/null 2>&1
check "erase --threshold 0.1 is a usage error (2)" test $? = 2
"$bin" erase --data "$data" --block --note "ticket 7" "$faces/obama_small.jpg" >"$tmp/erase.json"
check "erase --block erases the 11 photos and adds a block" json '
const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
process.exit(!j.dry_run && j.images_erased === 11 && j.complete && /^[0-9a-f-]{36}$/.test(j.block_id) ? 0 : 1);' "$tmp/erase.json"
{ cat "$faces/obama-1080p.jpg"; printf 'a new copy'; } >"$tmp/obama-copy.jpg"
"$bin" ingest --data "$data" "$tmp/obama-copy.jpg" >"$tmp/blocked.json" 2>/dev/null
check "a new photo of the blocked person is erased on arrival" json '
const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
process.exit(j.blocked === 1 && j.processed === 0 && j.faces_indexed === 0 ? 0 : 1);' "$tmp/blocked.json"
"$bin" search --data "$data" --top-k 30 "$faces/knn_examples/test/obama1.jpg" >"$tmp/after.json"
check "after erasure no face of the person is found" json '
const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
process.exit(j.results.length > 0 && j.results.every((r) => !r.same_person) ? 0 : 1);' "$tmp/after.json"

# 6. usage errors
"$bin" detect >/dev/null 2>&1; check "detect without files is a usage error (2)" test $? = 2
"$bin" bogus >/dev/null 2>&1; check "unknown command is a usage error (2)" test $? = 2
"$bin" crawl >/dev/null 2>&1; check "crawl without a URL is a usage error (2)" test $? = 2
"$bin" crawl ftp://example.com/ --data "$tmp/c" >/dev/null 2>"$tmp/crawl.err"; rc=$?
check "crawl of a non-http URL is a usage error naming it" test $rc = 2 -a -n "$(grep 'ftp://example.com/' "$tmp/crawl.err")"
"$bin" crawl http://127.0.0.1:1/ --depth -1 >/dev/null 2>"$tmp/crawl.err"; rc=$?
check "crawl --depth -1 is refused naming the option" test $rc = 2 -a -n "$(grep -- '--depth' "$tmp/crawl.err")"
# nothing listens on 127.0.0.1 port 1: the job fails with the seed's error, exit 1
"$bin" crawl http://127.0.0.1:1/ --data "$tmp/c" --timeout 2 >"$tmp/crawl.json" 2>"$tmp/crawl.err"; rc=$?
check "crawl of an unreachable seed exits 1 and reports a failed job" json '
const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
process.exit(j.state === "failed" && /seed URL failed/.test(j.error) && j.pages_fetched === 0 ? 0 : 1);' "$tmp/crawl.json"
check "crawl exit status 1" test $rc = 1

echo "cli: $((n - fails)) passed, $fails failed"
[ $fails = 0 ]
