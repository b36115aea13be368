#!/usr/bin/env bash
# Builds the base image of the svr-fastpath containers from Debian's packages only: a bookworm
# root filesystem made by debootstrap (minbase + docker/base-packages.txt), loaded with
# `docker import`. No registry is used.
#
#   docker/mkbase.sh TAG            # scripts/containers.sh calls it when TAG is not present
#
# The Debian mirror is SVR_DEBIAN_MIRROR, else the first bookworm source of this host's apt
# configuration, else debootstrap's default. Needs root and debootstrap.
set -euo pipefail
TAG=${1:?usage: docker/mkbase.sh TAG}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SUITE=bookworm
say() { printf '[mkbase] %s\n' "$*" >&2; }

mirror=${SVR_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  # deb822 (.sources) first, then one-line lists: the URI of a source that has bookworm main.
  mirror=$(awk '/^URIs:/{u=$2} /^Suites:/{for(i=2;i<=NF;i++) if($i=="bookworm") s=1}
                /^$/{if(u!=""&&s&&!f){print u; f=1} u=""; s=0}
                END{if(u!=""&&s&&!f) print u}' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1 || true)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list || true)
fi

pkgs=$(grep -v '^\s*#' "$HERE/base-packages.txt" | tr -s ' \n' ',' | sed 's/^,//; s/,$//')
ROOTFS=$(mktemp -d /var/tmp/svr-base.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT
say "debootstrap $SUITE (minbase + $pkgs) from ${mirror:-the default mirror of debootstrap}"
# shellcheck disable=SC2086
debootstrap --variant=minbase --include="$pkgs" "$SUITE" "$ROOTFS" $mirror >"$ROOTFS.log" 2>&1 \
  || { tail -n 20 "$ROOTFS.log" >&2; rm -f "$ROOTFS.log"; exit 1; }
rm -f "$ROOTFS.log"
# dpdk-testpmd (the benchmark's reference forwarder) ships in dpdk-dev, which would bring the
# headers and every -dev package: take the one binary from that package (its libraries are in
# base-packages.txt), with the chroot's own apt and sources.
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
chroot "$ROOTFS" sh -c 'cd /tmp && apt-get update -qq 2>/dev/null && apt-get download -qq dpdk-dev 2>/dev/null \
  && dpkg-deb --fsys-tarfile dpdk-dev_*.deb | tar -x -C / ./usr/bin/dpdk-testpmd && rm -f dpdk-dev_*.deb' \
  || { say "error: could not take dpdk-testpmd from dpdk-dev"; exit 1; }
if chroot "$ROOTFS" ldd /usr/bin/dpdk-testpmd | grep "not found" >&2; then
  say "error: dpdk-testpmd misses the libraries above (add their packages to base-packages.txt)"; exit 1
fi
: >"$ROOTFS/etc/resolv.conf"
# Smaller: no downloaded packages, package lists, documentation.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/lib/apt/lists/* \
       "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/*
say "docker import -> $TAG ($(du -sh "$ROOTFS" | cut -f1))"
tar -C "$ROOTFS" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' \
  --message "debootstrap $SUITE minbase + $pkgs + dpdk-testpmd" - "$TAG" >/dev/null
