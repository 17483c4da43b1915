#!/usr/bin/env bash
# The main job: version a generated dataset twice on the local default store, look at its history,
# and pull the older version back into a fresh directory. Uses only the `gitfree` command.
set -euo pipefail

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

# Day 1: 200 sensor readings files and a small manifest.
python - "$work/sensors" <<'PY'
import random, sys, pathlib
root = pathlib.Path(sys.argv[1]); rng = random.Random(42)
for i in range(200):
    p = root / f"station-{i % 8}" / f"reading-{i:03d}.csv"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("t,value\n" + "".join(f"{t},{rng.gauss(20, 5):.3f}\n" for t in range(50)))
(root / "manifest.json").write_text('{"stations": 8, "day": 1}\n')
PY
cp -r "$work/sensors" "$work/day1"

echo "store: ${GITFREE_STORE:-the local default store}"
run gitfree commit demo/sensors "$work/sensors" -m "day 1 readings" --meta source=generator --metric files=201
run gitfree commit demo/sensors "$work/sensors" -m "same data again: no new version"

# Day 2: two readings corrected, one added, the manifest updated.
python - "$work/sensors" <<'PY'
import sys, pathlib
root = pathlib.Path(sys.argv[1])
for name in ("station-0/reading-000.csv", "station-1/reading-001.csv"):
    (root / name).write_text("t,value\n0,19.500\n")
(root / "station-9").mkdir()
(root / "station-9" / "reading-200.csv").write_text("t,value\n0,21.000\n")
(root / "manifest.json").write_text('{"stations": 9, "day": 2}\n')
PY
run gitfree commit demo/sensors "$work/sensors" -m "day 2 readings"

run gitfree log demo/sensors --limit 5
run gitfree diff demo/sensors@latest~1 demo/sensors
run gitfree tag demo/sensors@latest~1 day1 --move
run gitfree pull demo/sensors@day1 "$work/restored"

say "diff -r restored day-1 data against the original"
diff -r "$work/day1" "$work/restored"
echo "identical: $(find "$work/restored" -type f | wc -l) files restored byte for byte"
run gitfree show demo/sensors

# Data in place: a landing folder other tools write to, versioned where it is (nothing copied), then
# materialized into the store so the versions outlive the folder (this demo deletes it at the end).
mkdir -p "$work/landing"
for i in 1 2 3; do printf 'frame %s\n' "$i" > "$work/landing/frame-$i.txt"; done
run gitfree commit demo/landing "$work/landing" --by-reference -m "as it landed"
run gitfree materialize demo/landing
printf 'frame 2, relabelled\n' > "$work/landing/frame-2.txt"
run gitfree commit demo/landing "$work/landing" --by-reference -m "frame 2 relabelled"
run gitfree materialize demo/landing
run gitfree diff demo/landing@latest~1 demo/landing

echo
echo "To look at the store in a browser (read-only; Ctrl+C stops it): gitfree ui --open"
echo "(in this checkout: .venv/bin/gitfree ui --open), then http://127.0.0.1:8765/d/demo/sensors"
