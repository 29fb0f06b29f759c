#!/usr/bin/env bash
# Builds the *test* sandbox image offline: a minimal Debian made by debootstrap from the
# mirror this machine's apt is already configured with (read from its sources, never
# written here), plus the project's node binary and the files under
# test/sandbox-image/rootfs (stand-in tools). No registry is needed.
#
# Cached: the image carries a label with a digest of its inputs; a matching image, or a
# cached rootfs tarball under .cache/sandbox, makes a re-run take well under a second.
#
# Usage: scripts/build-sandbox-image.sh [image-tag]   (default agent-sandbox:test)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tag=${1:-${SANDBOX_TEST_IMAGE:-agent-sandbox:test}}
node_bin=${SANDBOX_NODE_BIN:-$(command -v node)}
node_bin=$(readlink -f "$node_bin")
suite=${SANDBOX_SUITE:-bookworm}
cache_dir="$root/.cache/sandbox"
mkdir -p "$cache_dir"

# Mirror: the first deb822 "URIs:" or one-line "deb" source whose suite is $suite.
find_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$suite" '
      /^[[:space:]]*$/ { if (uri != "" && hit) { print uri; exit } uri=""; hit=0; next }
      /^URIs:/   { uri=$2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) hit=1 }
      END { if (uri != "" && hit) print uri }' "$f" | head -n1
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v suite="$suite" '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i == suite) { print $(i-1); exit } }' "$f"
  done
}
mirror=${SANDBOX_MIRROR:-$(find_mirror | head -n1)}
if [ -z "$mirror" ]; then
  echo "build-sandbox-image: no apt source for suite '$suite' found in /etc/apt; set SANDBOX_MIRROR" >&2
  exit 1
fi

# Digest of everything that goes into the image.
overlay="$root/test/sandbox-image/rootfs"
key=$( {
  echo "suite=$suite"
  "$node_bin" --version
  sha256sum "$0"
  (cd "$overlay" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
} | sha256sum | cut -c1-16)

if docker image inspect "$tag" --format '{{ index .Config.Labels "agent.sandbox.key" }}' 2>/dev/null | grep -qx "$key"; then
  echo "build-sandbox-image: $tag is up to date ($key)"
  exit 0
fi

tarball="$cache_dir/rootfs-$key.tar"
if [ ! -s "$tarball" ]; then
  base="$cache_dir/debootstrap-$suite.tar"
  if [ ! -s "$base" ]; then
    command -v debootstrap >/dev/null || { echo "build-sandbox-image: debootstrap is not installed" >&2; exit 1; }
    work=$(mktemp -d "$cache_dir/bootstrap.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    echo "build-sandbox-image: debootstrap $suite (minbase) — takes a few minutes once"
    debootstrap --variant=minbase "$suite" "$work/rootfs" "$mirror" >"$cache_dir/debootstrap.log" 2>&1 \
      || { tail -n 30 "$cache_dir/debootstrap.log" >&2; exit 1; }
    # Trim what a sandbox never needs.
    rm -rf "$work/rootfs"/var/cache/apt/archives/*.deb "$work/rootfs"/var/lib/apt/lists/* \
      "$work/rootfs"/usr/share/doc/* "$work/rootfs"/usr/share/man/* "$work/rootfs"/usr/share/locale/*
    tar -C "$work/rootfs" -cf "$base.tmp" . && mv "$base.tmp" "$base"
    rm -rf "$work"
    trap - EXIT
  fi
  work=$(mktemp -d "$cache_dir/layer.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  # docker import rejects duplicate paths, so lay the base and the layer out in one tree.
  tar -C "$work" -xf "$base"
  mkdir -p "$work/usr/local/bin" "$work/workspace"
  install -m 0755 "$node_bin" "$work/usr/local/bin/node"
  cp -a "$overlay/." "$work/"
  find "$work" -name .keep -delete
  tar -C "$work" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$work"
  trap - EXIT
  # Old tarballs of other keys are dead weight.
  find "$cache_dir" -maxdepth 1 -name 'rootfs-*.tar' ! -name "rootfs-$key.tar" -delete
fi

docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV HOME=/tmp' \
  --change 'WORKDIR /workspace' \
  --change 'USER 65534:65534' \
  --change "LABEL agent.sandbox.key=$key" \
  --change 'CMD ["/bin/sh"]' \
  "$tarball" "$tag" >/dev/null
echo "build-sandbox-image: built $tag ($key)"
