#!/bin/sh
# Entrypoint of the svrd image (docker/Dockerfile). Two jobs:
#
#   svrd-entrypoint make-pki DIR AUTHORITY NAME...
#       a fresh PKI for a testbed (compose.yaml's one-shot `pki` service): `svrd pki init` and
#       one `svrd pki issue` per router name, unless DIR/root.pem already exists.
#   svrd-entrypoint [svrd arguments]         (default: --config /etc/svrd/svrd.yaml)
#       names the interfaces (svr-ifnames-exec, docker/ifnames.sh: SVR_IFACES="lan=10.1.0.1
#       wan=10.9.0.1", by the address Docker gave each), then becomes svrd (exec: svrd is PID 1
#       and gets docker's SIGTERM).
set -eu
if [ "${1:-}" = make-pki ]; then
  dir=$2 authority=$3
  shift 3
  if [ -f "$dir/root.pem" ]; then echo "[svrd-entrypoint] PKI already in $dir" >&2; exit 0; fi
  svrd pki init "$dir" --authority "$authority" >/dev/null
  for n in "$@"; do svrd pki issue "$dir" "$n" >/dev/null; done
  echo "[svrd-entrypoint] PKI made in $dir: root, intermediate, $*" >&2
  exit 0
fi
[ "$#" -gt 0 ] || set -- --config /etc/svrd/svrd.yaml
case "$1" in -*) set -- svrd "$@" ;; esac
exec svr-ifnames-exec "$@"
