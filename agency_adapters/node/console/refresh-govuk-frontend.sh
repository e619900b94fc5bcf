#!/usr/bin/env bash
# Refresh the vendored GOV.UK Frontend assets under static/govuk/ from the npm registry.
#
#   agency_adapters/node/console/refresh-govuk-frontend.sh [VERSION]
#
# The console serves these files itself (no CDN: a strict Content-Security-Policy allows
# only 'self'). The CSS is compiled from govuk-frontend's Sass with Arial instead of the
# GDS Transport font, and no crown or crest is used anywhere: GOV.UK Frontend's code is
# MIT-licensed, but the font and the crown are only for services on GOV.UK itself.
# Needs node and npm; writes static/govuk/VERSION and LICENSE beside the assets.
set -euo pipefail
version="${1:-6.6.0}"
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/static/govuk"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund "govuk-frontend@$version" "sass@1"
src="node_modules/govuk-frontend/dist/govuk"
cat > console.scss <<'SCSS'
$govuk-font-family: arial, sans-serif;
$govuk-include-default-font-face: false;
$govuk-assets-path: "/static/govuk/assets/";
@import "node_modules/govuk-frontend/dist/govuk/index";
SCSS
npx sass --style=compressed --no-source-map --quiet-deps --silence-deprecation=import \
  console.scss govuk-frontend.min.css

rm -rf "$out"
mkdir -p "$out/assets/images"
cp govuk-frontend.min.css "$out/"
sed "s|//# sourceMappingURL=.*$||" "$src/govuk-frontend.min.js" > "$out/govuk-frontend.min.js"
cp "$src/assets/images/favicon.ico" "$src/assets/images/favicon.svg" "$out/assets/images/"
installed="$(node -p "require('./node_modules/govuk-frontend/package.json').version")"
echo "govuk-frontend $installed (npm), CSS compiled with sass $(npx sass --version)" > "$out/VERSION"
cat > "$out/LICENSE" <<'LICENCE'
GOV.UK Frontend (https://github.com/alphagov/govuk-frontend), MIT licence:

The MIT License (MIT)

Copyright (c) 2015 Crown Copyright (Government Digital Service)

Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of
the Software, and to permit persons to whom the Software is furnished to do so,
subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS
FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR
COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER
IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN
CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.

The GDS Transport font and the crown and crest images are not included: they are
for services on GOV.UK only.
LICENCE
echo "GOV.UK Frontend $installed vendored into $out"
