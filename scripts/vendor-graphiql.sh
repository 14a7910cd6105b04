#!/usr/bin/env bash
# Refreshes the GraphiQL page's assets in trustfabric/web/static/vendor/ from the npm
# releases, so /graphql loads on a machine without internet. Run it from anywhere with npm
# on the PATH; pass other versions to upgrade, then update the README beside the assets.
set -euo pipefail
GRAPHIQL=${GRAPHIQL:-3.8.3}
REACT=${REACT:-18.2.0}   # GraphiQL 3 ships as a UMD bundle over React 18's UMD builds
dest="$(cd "$(dirname "$0")/.." && pwd)/trustfabric/web/static/vendor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT" >/dev/null
for tarball in "graphiql-$GRAPHIQL" "react-$REACT" "react-dom-$REACT"; do
  package=${tarball%-*}
  mkdir "$package"
  tar xzf "$tarball.tgz" -C "$package" --strip-components=1
  cp "$package/LICENSE" "$dest/LICENSE.$package"
done
cp graphiql/graphiql.min.js graphiql/graphiql.min.css "$dest/"
cp react/umd/react.production.min.js react-dom/umd/react-dom.production.min.js "$dest/"
# the source maps are not shipped: drop the comments that would ask for them
sed -i -E '\%^(//|/\*)# sourceMappingURL=%d' "$dest"/*.js "$dest"/*.css
echo "vendored graphiql@$GRAPHIQL react@$REACT react-dom@$REACT into $dest"
