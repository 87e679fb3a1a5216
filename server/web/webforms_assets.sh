#!/bin/sh
# Vendor ODK Web Forms and Vue for the form-filling page (/forms/<id>/fill), so that a server
# runs without npm. The versions are pinned in server/web/static/webforms/package-lock.json;
# to upgrade, change them in its package.json, run `npm install --package-lock-only` there,
# then `make webforms-assets`, and commit the new folders (and delete the old ones).
set -eu
cd "$(dirname "$0")/../.."
dest=server/web/static/webforms
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cp "$dest/package.json" "$dest/package-lock.json" "$tmp/"
npm ci --prefix "$tmp" --ignore-scripts --no-audit --no-fund --loglevel=error

version() { node -p "require('$tmp/node_modules/$1/package.json').version"; }
wf="$dest/web-forms-$(version @getodk/web-forms)"
vue="$dest/vue-$(version vue)"
rm -rf "$wf" "$vue"
mkdir -p "$wf" "$vue"

# dist/index.js and the chunks it imports (the map widget is loaded on demand); its only
# bare import is `vue`, which the page's import map resolves. No source maps, no favicon.
cp "$tmp"/node_modules/@getodk/web-forms/dist/*.js "$wf/"
# The package ships no license file; package.json names Apache-2.0.
license=$(node -p "require('$tmp/node_modules/@getodk/web-forms/package.json').license")
[ "$license" = "Apache-2.0" ] || { echo "web-forms license is now $license: check it" >&2; exit 1; }
{
  echo "@getodk/web-forms $(version @getodk/web-forms), https://github.com/getodk/web-forms"
  echo "License: Apache-2.0 (its package.json). The license text follows."
  echo
  cat "${APACHE_LICENSE:-/usr/share/common-licenses/Apache-2.0}"
} >"$wf/LICENSE"

cp "$tmp/node_modules/vue/dist/vue.esm-browser.prod.js" "$tmp/node_modules/vue/LICENSE" "$vue/"
du -sh "$wf" "$vue"
