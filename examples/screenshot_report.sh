#!/bin/sh
# Render a report in headless Chromium (Debian: apt-get install chromium) and save a PNG.
#   examples/screenshot_report.sh [REPORT_HTML] [OUT_PNG] [SECTION_ID]
# Defaults: demo-out/report.html (run `make demo` first) -> docs/report.png.
# With SECTION_ID (e.g. 02-descent-similar), the picture starts at that section of the report;
# HEIGHT sets the window's height (default 2400). docs/similarity.png is a generated class of 14
# (examples/similar_class.py --students 14 --pairs 2 --seed 3) graded, compared into the same folder,
# reported, then: HEIGHT=1250 examples/screenshot_report.sh report.html docs/similarity.png 02-descent-similar
set -eu
report=$(realpath "${1:-demo-out/report.html}")
out=$(realpath -m "${2:-docs/report.png}")
section=${3:-}
chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
    echo "needs Chromium: apt-get install chromium" >&2
    exit 2
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
if [ -n "$section" ]; then
    # A copy of the report in which everything before the section is hidden.
    sed "s|</head>|<style>main > :has(~ [id=\"$section\"]) { display: none; }</style></head>|" "$report" \
        > "$profile/report.html"
    report="$profile/report.html"
fi
# The network flags keep Chromium from calling home on a machine with no internet.
"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$profile" --window-size=1280,"${HEIGHT:-2400}" \
    --screenshot="$out" "file://$report" 2>/dev/null
echo "wrote $out"
