#!/usr/bin/env bash
# Renders DIR/report.html (or the given .html file) with headless Chromium to a PNG beside it,
# so a person (or a session) can look at the report as a browser shows it.
#   scripts/render-report.sh DIR [WIDTHxHEIGHT]      → DIR/report.png
#   scripts/render-report.sh FILE.html [WIDTHxHEIGHT] → FILE.png
# Needs Debian's `chromium` (apt-get install -y chromium).
set -euo pipefail
target=${1:?usage: render-report.sh DIR|FILE.html [WIDTHxHEIGHT]}
size=${2:-1200x2400}
if [[ -d $target ]]; then html="$target/report.html"; png="$target/report.png"; else html="$target"; png="${target%.html}.png"; fi
[[ -f $html ]] || { echo "render-report.sh: $html not found (run 'engram report' first)" >&2; exit 1; }
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[[ -n $browser ]] || { echo "render-report.sh: chromium not found; install it with: apt-get install -y chromium" >&2; exit 1; }
html=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
png=$(cd "$(dirname "$png")" && pwd)/$(basename "$png")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
    --screenshot="$png" --window-size="${size/x/,}" "file://$html" >/dev/null 2>&1
[[ -s $png ]] || { echo "render-report.sh: chromium wrote no screenshot to $png" >&2; exit 1; }
echo "$png"
