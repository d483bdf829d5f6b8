#!/usr/bin/env bash
# Checks the runner's scale-out features end to end (issue 18), with real VMs:
# 1. the smoke matrix (6.1, 6.12, 7.2) run as 3 shards merges into the same
#    results table as the unsharded run (`zonecopy-ci report --table`);
# 2. every run's kcidb.json validates against the KCIDB schema of the
#    `kcidb-io` package, installed into a throwaway virtual environment;
# 3. the merged report.html renders in headless Chromium, and the DOM's
#    kernel x suite cells hold each run's numbers as its junit.xml counts
#    them (an independent source); a screenshot is taken too; the report
#    sees the 3 shards as complete, and 2 of them as incomplete;
# 4. `zonecopy-ci bisect` finds the planted first bad commit of a small git
#    repository whose commits name cached kernels (.zonecopy-kernel):
#    6.1, then a commit whose kernel does not exist (skipped, exit 125),
#    then 6.12, whose known bug zwplug-error-stuck shows as an XFAIL of
#    nvme's zns.write_after_error (counted as bad with --xfail-as bad).
#
# Usage: scripts/check-scale.sh [--unsharded DIR]
#   --unsharded DIR  reuse a finished `matrix --kernels 6.1,6.12,7.2 --suite
#                    smoke` output instead of running it again
# Needs scripts/build.sh first. Everything goes to a temp dir, removed at
# exit (also on failure or interrupt).
set -euo pipefail
cd "$(dirname "$0")/.."
KERNELS=6.1,6.12,7.2
ci=$PWD/target/release/zonecopy-ci
unsharded=
while [ $# -gt 0 ]; do
	case $1 in
	--unsharded) unsharded=$2; shift 2 ;;
	*) echo "usage: $0 [--unsharded DIR]" >&2; exit 2 ;;
	esac
done
log() { printf 'check-scale: %s\n' "$*"; }
die() { log "FAIL: $*"; exit 1; }
[ -x "$ci" ] || die "$ci missing: run scripts/build.sh"
# Debian's python3 (its venv module is python3-venv), whatever is on PATH.
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)

work=$(mktemp -d /tmp/zonecopy-scale.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
t0=$SECONDS
took() { log "$1 ($((SECONDS - t0)) s so far)"; }

# 1. Shards against the unsharded run.
if [ -z "$unsharded" ]; then
	unsharded=$work/unsharded
	"$ci" matrix --kernels "$KERNELS" --suite smoke --out "$unsharded" >"$work/unsharded.log" 2>&1 ||
		die "unsharded matrix failed: $(tail -5 "$work/unsharded.log")"
fi
for k in 1 2 3; do
	CI=1 "$ci" matrix --kernels "$KERNELS" --suite smoke --shard "$k/3" --out "$work/shard-$k" \
		>"$work/shard-$k.log" 2>&1 || die "shard $k/3 failed: $(tail -5 "$work/shard-$k.log")"
	grep -q "^\[1/1\] smoke on .*: PASS in" "$work/shard-$k.log" || die "shard $k/3: no progress lines"
done
"$ci" report --table "$unsharded" >"$work/table-unsharded.md"
"$ci" report --table "$work/shard-3" "$work/shard-1" "$work/shard-2" >"$work/table-shards.md"
diff -u "$work/table-unsharded.md" "$work/table-shards.md" || die "the shards' table differs"
rows=$(grep -c '^| [0-9]' "$work/table-shards.md")
[ "$rows" = 3 ] || die "expected 3 kernels in the table, got $rows"
took "3 shards give the unsharded table ($rows kernels)"

# 4 (first, so its runs are validated and reported too). Bisect.
repo=$work/repo
git init -q -b main "$repo"
commit() { # $1 = kernel name, $2 = message
	printf '# the kernel this commit boots\n%s\n' "$1" >"$repo/.zonecopy-kernel"
	printf '%s\n' "$2" >>"$repo/CHANGES"
	git -C "$repo" add -A
	git -C "$repo" -c user.name=zonecopy -c user.email=ci@zonecopy.invalid commit -q -m "$2"
	git -C "$repo" rev-parse HEAD
}
good=$(commit 6.1 "start on 6.1")
commit 6.1 "still 6.1" >/dev/null
commit no-such-kernel "a kernel that does not build" >/dev/null
commit 6.1 "back to 6.1" >/dev/null
planted=$(commit 6.12 "move to 6.12 (zwplug-error-stuck)")
bad=$(commit 6.12 "still 6.12")
CI=1 "$ci" bisect --kernel-tree "$repo" --good "$good" --bad "$bad" --suite nvme \
	--test zns.write_after_error --xfail-as bad --out "$work/bisect" >"$work/bisect.out" 2>&1 ||
	die "bisect failed: $(tail -20 "$work/bisect.out")"
grep -q "^first bad commit: $planted " "$work/bisect.out" ||
	die "bisect did not find $planted: $(grep -A8 'first bad' "$work/bisect.out" || tail -20 "$work/bisect.out")"
grep -q "known bug zwplug-error-stuck: zonecopy.nvme.zns.write_after_error" "$work/bisect.out" ||
	die "no evidence printed: $(grep -A8 'first bad' "$work/bisect.out")"
[ -z "$(git -C "$repo" status --porcelain)" ] && [ "$(git -C "$repo" rev-parse HEAD)" = "$bad" ] ||
	die "bisect left the repository changed"
steps=$(wc -l <"$work/bisect/steps.log")
took "bisect: first bad commit ${planted:0:12} found in $steps steps ($(grep -c ' 125 ' "$work/bisect/steps.log" || true) skipped)"

# 2. KCIDB documents against the kcidb-io schema, in a throwaway venv.
"$py" -m venv "$work/venv" || die "python3 -m venv failed (python3-venv installed?)"
"$work/venv/bin/pip" install -q --disable-pip-version-check kcidb-io >"$work/pip.log" 2>&1 ||
	die "pip install kcidb-io failed: $(tail -3 "$work/pip.log")"
docs=$(find "$unsharded" "$work"/shard-* "$work/bisect" -name kcidb.json | sort)
# shellcheck disable=SC2086
"$work/venv/bin/python" - $docs <<'PY' || die "KCIDB validation failed"
import json, sys
import kcidb_io
schema = kcidb_io.schema.LATEST
n = tests = xfail = 0
for f in sys.argv[1:]:
    doc = json.load(open(f))
    schema.validate_exactly(doc)  # raises on the first error
    n += 1
    tests += len(doc["tests"])
    xfail += len(doc.get("incidents", []))
if n < 7:
    sys.exit(f"only {n} documents")
if xfail == 0:
    sys.exit("no known-bug incident among the bisect's 6.12 runs")
print(f"check-scale: {n} KCIDB documents valid (schema {schema.major}.{schema.minor}): {tests} tests, {xfail} known-bug incidents")
PY
took "KCIDB valid"

# 3. The merged report in headless Chromium.
"$ci" report --title "zonecopy smoke, 3 shards" --out "$work/report" "$work"/shard-* "$work/bisect" \
	>"$work/report.log" 2>&1 || die "report failed: $(cat "$work/report.log")"
grep -q "^zonecopy-ci report: matrix smoke x $KERNELS (3 cells, 3 of 3 shards): complete" "$work/report.log" ||
	die "the report does not see the 3 shards as complete: $(cat "$work/report.log")"
"$ci" report --out "$work/report-2" "$work/shard-1" "$work/shard-2" >"$work/report-2.log" 2>&1
grep -q "INCOMPLETE: shard 3/3 missing" "$work/report-2.log" ||
	die "a missing shard went unnoticed: $(cat "$work/report-2.log")"
if ! command -v chromium >/dev/null; then
	log "installing chromium (once)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
		--no-install-recommends chromium >/dev/null || die "cannot install chromium"
fi
chrome() {
	chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$work/chrome" "$@" 2>>"$work/chromium.log"
}
chrome --dump-dom "file://$work/report/report.html" >"$work/dom.html" || die "chromium --dump-dom failed"
chrome --screenshot="$work/shot.png" --window-size=1280,1600 "file://$work/report/report.html" >/dev/null ||
	die "chromium --screenshot failed"
[ "$(head -c 8 "$work/shot.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || die "no PNG screenshot"
"$py" - "$work/dom.html" "$work"/shard-*/*/junit.xml <<'PY' || die "the rendered table does not hold the runs' numbers"
import sys, html.parser, xml.etree.ElementTree as ET
class Cells(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(); self.cells = {}; self.summary = None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "span" and "cell" in a.get("class", "").split():
            self.cells.setdefault((a["data-kernel"], a["data-suite"]), []).append(tuple(int(a[f"data-{k}"]) for k in ("passed", "failed", "skipped", "xfail")))
        if a.get("id") == "summary":
            self.summary = int(a["data-runs"])
p = Cells(); p.feed(open(sys.argv[1]).read())
if p.summary is None or not p.cells:
    sys.exit("the browser's DOM has no results table")
for f in sys.argv[2:]:
    suite = ET.parse(f).getroot().find("testsuite")
    counts = [0, 0, 0, 0]
    for case in suite.iter("testcase"):
        if case.get("name") == "(run)":
            continue
        out = case.find("system-out")
        if case.find("failure") is not None: counts[1] += 1
        elif case.find("skipped") is not None: counts[2] += 1
        elif out is not None and (out.text or "").startswith("XFAIL"): counts[3] += 1
        else: counts[0] += 1
    cls = suite.find("testcase").get("classname")          # "<suite>.<kernel>"
    s, k = cls.split(".", 1)
    got = p.cells.get((k, s), [])
    if tuple(counts) not in got:
        sys.exit(f"{f}: junit.xml counts {counts}, the page shows {got}")
print(f"check-scale: the rendered page shows {len(p.cells)} cells of {p.summary} runs, matching junit.xml")
PY
took "report rendered in $(chromium --version 2>/dev/null | head -1) ($(stat -c %s "$work/shot.png") byte screenshot)"
log "PASS in $((SECONDS - t0)) s"
