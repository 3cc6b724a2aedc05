#!/bin/sh
# Copy the browser files geoby serves from the npm packages into api/static/vendor/.
# Run after `npm ci` (the Makefile's `web` target does both). No CDN at run time:
# the web map loads only what this script puts there.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
vendor="$here/../api/static/vendor"
dist="$here/node_modules/maplibre-gl/dist"
[ -d "$dist" ] || { echo "maplibre-gl is not installed: run 'npm ci' in web/ first" >&2; exit 1; }
mkdir -p "$vendor"
# The CSP build: its worker is a file of its own, so the page's Content-Security-Policy
# needs no blob: workers.
for f in maplibre-gl-csp.js maplibre-gl-csp-worker.js maplibre-gl.css; do
  cp "$dist/$f" "$vendor/$f"
done
cp "$here/node_modules/maplibre-gl/LICENSE.txt" "$vendor/maplibre-gl.LICENSE.txt"
# The source-map comments would make browser dev tools ask for files not shipped.
sed -i '/^\/\/# sourceMappingURL=/d' "$vendor/maplibre-gl-csp.js" "$vendor/maplibre-gl-csp-worker.js"
echo "web: vendored maplibre-gl $(node -p "require('$here/node_modules/maplibre-gl/package.json').version") into api/static/vendor"
