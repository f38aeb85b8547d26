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
mkdir -p "$tmp/c"   # crawl reads an existing data dir; it does not make one
"$bin" crawl http://127.0.0.1:1/ --data "$tmp/c" --timeout 2 >"$tmp/crawl.json" 2>"$tmp/crawl.err"; rc=$?
check "crawl of an unreachable seed exits 1 and reports a failed job" json '
const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
process.exit(j.state === "failed" && /seed URL failed/.test(j.error) && j.pages_fetched === 0 ? 0 : 1);' "$tmp/crawl.json"
check "crawl exit status 1" test $rc = 1

# 7. help: on stdout, exit 0, from one table; usage errors on stderr, exit 2
cmds="detect embed compare serve api worker ingest search crawl erase reindex tenant help"
"$bin" help >"$tmp/help.out" 2>"$tmp/help.err"; rc=$?
check "visage help exits 0 with stdout only" test $rc = 0 -a -s "$tmp/help.out" -a ! -s "$tmp/help.err"
missing=""; for c in $cmds; do grep -qE "^  $c +[a-zA-Z]" "$tmp/help.out" || missing="$missing $c"; done
check "visage help lists every command (missing:$missing)" test -z "$missing"
check "docs/cli.md has the visage help overview verbatim" node -e '
const fs = require("fs");
process.exit(fs.readFileSync(process.argv[1], "utf8").includes(fs.readFileSync(process.argv[2], "utf8")) ? 0 : 1);' \
  "$here/docs/cli.md" "$tmp/help.out"
"$bin" --help >"$tmp/help2.out" 2>/dev/null; rc=$?
check "visage --help exits 0 and prints the same overview" cmp -s "$tmp/help.out" "$tmp/help2.out"
"$bin" search --help >"$tmp/sh.out" 2>"$tmp/sh.err"; rc=$?
check "search --help exits 0 on stdout" test $rc = 0 -a ! -s "$tmp/sh.err"
check "search --help shows --top-k with its default 10" grep -qE -- '--top-k .*default: 10\)' "$tmp/sh.out"
check "search --help has an example line" grep -qE '^  visage search ' "$tmp/sh.out"
"$bin" help search >"$tmp/sh2.out" 2>/dev/null
check "visage help search = visage search --help" cmp -s "$tmp/sh.out" "$tmp/sh2.out"
"$bin" search -h >"$tmp/sh3.out" 2>/dev/null
check "search -h = search --help" cmp -s "$tmp/sh.out" "$tmp/sh3.out"
# every command: --help exits 0 on stdout, with usage, an example, and every
# option its source parses (a flag added to a cmd_*.c but not to the table fails here)
src="$here/src/cli"
for c in $cmds; do
  "$bin" $c --help >"$tmp/h.out" 2>"$tmp/h.err"; rc=$?
  check "$c --help exits 0 on stdout with usage and example" \
    test $rc = 0 -a ! -s "$tmp/h.err" -a -n "$(grep "^usage: visage $c" "$tmp/h.out")" -a -n "$(grep -A1 '^example:' "$tmp/h.out" | grep "visage")"
  check "docs/cli.md has the $c --help text verbatim" node -e '
const fs = require("fs");
process.exit(fs.readFileSync(process.argv[1], "utf8").includes(fs.readFileSync(process.argv[2], "utf8")) ? 0 : 1);' \
    "$here/docs/cli.md" "$tmp/h.out"
  case $c in detect|embed) f=cmd_faces.c;; api) f=cmd_serve.c;; help) f=;; *) f=cmd_$c.c;; esac
  undocumented=""
  if [ -n "$f" ]; then
    for o in $(grep -oE '"--[a-z-]+"' "$src/$f" | tr -d '"' | sort -u); do
      [ "$o" = --help ] && continue
      grep -qE -- "^  $o( |$)" "$tmp/h.out" || undocumented="$undocumented $o"
    done
  fi
  check "$c --help lists every option its source parses, each with a default (missing:$undocumented)" \
    test -z "$undocumented" -a "$(grep -cE '^  --' "$tmp/h.out")" = "$(grep -cE '^  --.*\(default: .+\)$' "$tmp/h.out")"
done
"$bin" search >"$tmp/u.out" 2>"$tmp/u.err"; rc=$?
check "search without an image: exit 2, usage on stderr pointing to --help, nothing on stdout" \
  test $rc = 2 -a ! -s "$tmp/u.out" -a -n "$(grep "see 'visage search --help'" "$tmp/u.err")" -a -n "$(grep '^usage: visage search' "$tmp/u.err")"
"$bin" tenant frobnicate >/dev/null 2>"$tmp/u.err"; rc=$?
check "tenant with an unknown verb: exit 2 pointing to --help" test $rc = 2 -a -n "$(grep "see 'visage tenant --help'" "$tmp/u.err")"
"$bin" erase --bogus x.jpg >/dev/null 2>"$tmp/u.err"; rc=$?
check "erase with an unknown option: exit 2 pointing to --help" test $rc = 2 -a -n "$(grep "see 'visage erase --help'" "$tmp/u.err")"
"$bin" bogus >"$tmp/u.out" 2>"$tmp/u.err"; rc=$?
check "unknown command: exit 2 on stderr naming it" test $rc = 2 -a ! -s "$tmp/u.out" -a -n "$(grep "unknown command 'bogus'" "$tmp/u.err")"
"$bin" help bogus >/dev/null 2>&1; check "help of an unknown command is a usage error (2)" test $? = 2
"$bin" ingest --no-wait "$faces/obama_small.jpg" --data "$tmp/nw" >/dev/null 2>"$tmp/u.err"; rc=$?
check "ingest --no-wait without --server: exit 2 saying why, no data dir made" \
  test $rc = 2 -a -n "$(grep -- '--no-wait goes with --server' "$tmp/u.err")" -a ! -e "$tmp/nw"

# 8. error lines name their op once
t8="$tmp/t8"
"$bin" tenant create alpha --data "$t8" >/dev/null 2>"$tmp/tc1.err"; rc=$?
check "tenant create in a new dir: exit 0, says it made the data dir once" \
  test $rc = 0 -a "$(grep -c "^visage: created data dir $t8\$" "$tmp/tc1.err")" = 1
"$bin" tenant create alpha --data "$t8" >/dev/null 2>"$tmp/tc2.err"; rc=$?
check "tenant create twice: exit 1, one line, 'tenant create:' exactly once" \
  test $rc = 1 -a "$(wc -l <"$tmp/tc2.err")" = 1 -a "$(grep -o 'tenant create:' "$tmp/tc2.err" | wc -l)" = 1 \
  -a -n "$(grep "^visage: tenant create: tenant 'alpha' already exists" "$tmp/tc2.err")"
"$bin" tenant create alpha --data "$t8" >/dev/null 2>"$tmp/tc3.err"
check "tenant create again does not say it made the data dir" test -z "$(grep 'created data dir' "$tmp/tc3.err")"

# 9. commands that read a data dir refuse a missing one and do not make it
"$bin" search "$faces/obama_small.jpg" --data "$tmp/nonexistent" >"$tmp/nd.out" 2>"$tmp/nd.err"; rc=$?
check "search on a missing data dir: exit 1 naming it" \
  test $rc = 1 -a -n "$(grep "^visage: search: no data dir at $tmp/nonexistent (create one with 'visage serve', 'visage ingest' or 'visage tenant create')\$" "$tmp/nd.err")"
check "search on a missing data dir does not create it" test ! -e "$tmp/nonexistent"
for args in "erase $faces/obama_small.jpg" "crawl http://127.0.0.1:1/" "reindex" "tenant list" "tenant rotate-key alpha"; do
  op=$(echo "$args" | awk '{print ($1=="tenant") ? $1" "$2 : $1}')
  "$bin" $args --data "$tmp/nonexistent" >/dev/null 2>"$tmp/nd.err"; rc=$?
  check "$op on a missing data dir: exit 1 naming it, not created" \
    test $rc = 1 -a -n "$(grep "^visage: $op: no data dir at $tmp/nonexistent " "$tmp/nd.err")" -a ! -e "$tmp/nonexistent"
done
(cd "$tmp" && VISAGE_DATA= "$bin" tenant list >/dev/null 2>"$tmp/nd.err"); rc=$?
check "tenant list with the default data dir missing: exit 1 naming ./visage-data" \
  test $rc = 1 -a -n "$(grep "no data dir at ./visage-data" "$tmp/nd.err")" -a ! -e "$tmp/visage-data"
VISAGE_DATA="$tmp/envdata" "$bin" tenant list >/dev/null 2>"$tmp/nd.err"; rc=$?
check "tenant list with \$VISAGE_DATA missing: exit 1 naming it" \
  test $rc = 1 -a -n "$(grep "no data dir at $tmp/envdata" "$tmp/nd.err")" -a ! -e "$tmp/envdata"

# 10. --tenant (local mode) names a tenant of the catalog, or default
t10="$tmp/t10"
"$bin" tenant create acme --data "$t10" >/dev/null 2>&1
"$bin" ingest --tenant nosuch --data "$t10" "$faces/obama_small.jpg" >"$tmp/nt.out" 2>"$tmp/nt.err"; rc=$?
check "ingest --tenant nosuch: exit 1 listing the tenants" \
  test $rc = 1 -a -n "$(grep "^visage: ingest: no tenant 'nosuch' (tenants: acme, default)\$" "$tmp/nt.err")"
check "ingest --tenant nosuch leaves no blob for it" test -z "$(find "$t10" -name '*nosuch*')"
if command -v sqlite3 >/dev/null; then
  check "ingest --tenant nosuch leaves no image record for it" \
    test "$(sqlite3 "$t10/catalog.db" "SELECT count(*) FROM images WHERE tenant_id = 'nosuch'")" = 0
fi
"$bin" search --tenant nosuch --data "$t10" "$faces/obama_small.jpg" >/dev/null 2>"$tmp/nt.err"; rc=$?
check "search --tenant nosuch: exit 1 listing the tenants" \
  test $rc = 1 -a -n "$(grep "^visage: search: no tenant 'nosuch' (tenants: acme, default)\$" "$tmp/nt.err")"
"$bin" ingest --tenant nosuch --data "$tmp/t10new" "$faces/obama_small.jpg" >/dev/null 2>"$tmp/nt.err"; rc=$?
check "ingest --tenant nosuch into a new dir: exit 1, dir not made" \
  test $rc = 1 -a -n "$(grep "no tenant 'nosuch' (tenants: default)" "$tmp/nt.err")" -a ! -e "$tmp/t10new"
"$bin" ingest --tenant acme --data "$t10" "$faces/obama_small.jpg" >"$tmp/nt.out" 2>/dev/null; rc=$?
check "ingest --tenant acme (an existing tenant) works" test $rc = 0
"$bin" search --data "$t10" "$faces/obama_small.jpg" >"$tmp/nt.out" 2>/dev/null; rc=$?
check "search in tenant default (always valid) works" test $rc = 0

# 11. ingest --server: --wait (the default) follows the images; --no-wait returns with their sha256
"$bin" serve --data "$tmp/srv" --listen 127.0.0.1:0 >/dev/null 2>"$tmp/srv.err" &
spid=$!
for i in $(seq 1 100); do grep -q '^visage: port ' "$tmp/srv.err" && break; sleep 0.1; done
port=$(sed -n 's/^visage: port //p' "$tmp/srv.err")
check "serve makes its data dir and says so once" test "$(grep -c "^visage: created data dir $tmp/srv\$" "$tmp/srv.err")" = 1
"$bin" ingest --server "http://127.0.0.1:$port" --no-wait "$faces/obama_small.jpg" >"$tmp/nw.json" 2>/dev/null; rc=$?
check "ingest --no-wait: exit 0, prints the sha256 of the accepted image, does not wait" json '
const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
process.exit(j.accepted === 1 && j.image_sha256.length === 1 && /^[0-9a-f]{64}$/.test(j.image_sha256[0]) && !("finished" in j) ? 0 : 1);' "$tmp/nw.json"
"$bin" ingest --server "http://127.0.0.1:$port" --wait "$faces/two_people.jpg" >"$tmp/w.json" 2>/dev/null; rc=$?
check "ingest --wait: exit 0 once the server finished the image" json '
const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
process.exit(j.accepted === 1 && j.finished === 1 && j.failed === 0 ? 0 : 1);' "$tmp/w.json"
kill $spid 2>/dev/null; wait $spid 2>/dev/null

echo "cli: $((n - fails)) passed, $fails failed"
[ $fails = 0 ]
