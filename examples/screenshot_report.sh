#!/bin/sh
# Render a report in headless Chromium (Debian: apt-get install chromium) and save a PNG.
#   examples/screenshot_report.sh [REPORT_HTML] [OUT_PNG]
# Defaults: demo-out/report.html (run `make demo` first) -> docs/report.png.
set -eu
report=$(realpath "${1:-demo-out/report.html}")
out=$(realpath -m "${2:-docs/report.png}")
chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
    echo "needs Chromium: apt-get install chromium" >&2
    exit 2
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# The network flags keep Chromium from calling home on a machine with no internet.
"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$profile" --window-size=1280,2400 \
    --screenshot="$out" "file://$report" 2>/dev/null
echo "wrote $out"
