#!/usr/bin/env bash
# The official OCDS 1.1 schemas the tests validate exports against, kept offline in .cache/ocds/ (gitignored).
# They are Apache-2.0 files of open-contracting/standard; we do not copy them into this repository but fetch
# them, by package name and pinned hash, from the PyPI source distributions that ship them as test fixtures:
#   ocdskit 1.7.0   ocdskit-1.7.0/tests/fixtures/release-package-schema.json   (release package, 1__1__5)
#   ocdsmerge 0.8.0 ocdsmerge-0.8.0/tests/fixtures/release-schema-1__1__4.json (release, 1__1__4)
# Idempotent: nothing is downloaded when both files are there and their archives match the pinned SHA-256.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dest=.cache/ocds
pip=${PIP:-.venv/bin/pip}
mkdir -p "$dest"
say() { printf 'ocds_schemas: %s\n' "$*" >&2; }

fetch() {  # name version sha256 member target
  local name=$1 version=$2 sha=$3 member=$4 target=$dest/$5 sdist=$dest/$1-$2.tar.gz
  if [[ -f $target && -f $sdist ]] && echo "$sha  $sdist" | sha256sum --check --status; then
    return 0
  fi
  if [[ ! -f $sdist ]] || ! echo "$sha  $sdist" | sha256sum --check --status; then
    say "downloading the $name $version source distribution (it ships $(basename "$member"))"
    local tmp
    tmp=$(mktemp -d "$dest/.download.XXXXXX")
    if ! "$pip" download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
         "$name==$version" -d "$tmp" >/dev/null 2>"$tmp/pip.log"; then
      cat "$tmp/pip.log" >&2
      rm -rf "$tmp"
      say "error: cannot download $name==$version from the package index; check the network and run again"
      exit 3
    fi
    if ! echo "$sha  $tmp/$name-$version.tar.gz" | sha256sum --check --status; then
      rm -rf "$tmp"
      say "error: $name-$version.tar.gz does not have the pinned SHA-256 $sha; refusing it"
      exit 1
    fi
    mv "$tmp/$name-$version.tar.gz" "$sdist"
    rm -rf "$tmp"
  fi
  tar -xzOf "$sdist" "$member" > "$target.tmp"
  mv "$target.tmp" "$target"
}

fetch ocdskit 1.7.0 02a7d6182bbd7672cfd26cdbcae9726fbacdb917203d2bd5a726caa30040ff76 \
  ocdskit-1.7.0/tests/fixtures/release-package-schema.json release-package-schema.json
fetch ocdsmerge 0.8.0 a9f6d8f1e854b79d07d378f3effaaefcc2687efd52e9edacd89b6b4a79538160 \
  ocdsmerge-0.8.0/tests/fixtures/release-schema-1__1__4.json release-schema-1__1__4.json
