#!/usr/bin/env bash
# Builds every target of deploy/docker/Dockerfile where no Docker engine runs
# and no image registry can be reached, then starts the images:
#
#   - buildah (Debian's package) builds with the vfs storage driver and
#     chroot isolation, as root, without a daemon;
#   - the two base images the Dockerfile names are made here instead of
#     pulled: debian:bookworm-slim from debootstrap (Debian's mirror), and
#     rust:1.95-bookworm as that plus this machine's Rust toolchain, laid out
#     as the official image lays it out (CARGO_HOME=/usr/local/cargo), and
#     the extra certificate authorities this machine trusts, so cargo can
#     fetch crates through a network that inspects TLS;
#   - each image is then run: every entrypoint answers --help as the non-root
#     user, every server image has a HEALTHCHECK (Docker format keeps it),
#     and the all-in-one passes the one its image config holds and takes and
#     returns a span.
#
#   sudo scripts/build-images.sh            # needs: apt-get install buildah debootstrap
#
# Where a registry is reachable, `docker build -f deploy/docker/Dockerfile .`
# is all it takes; this script exists to check the Dockerfile without one.
set -euo pipefail
cd "$(dirname "$0")/.."
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
work=${SPOOR_IMAGE_WORK:-/tmp/spoor-images}
mkdir -p "$work"

have_image() { buildah images --quiet "$1" >/dev/null 2>&1; }
# the image's HEALTHCHECK command (Docker format keeps it), empty if none
healthcheck() {
  buildah inspect --type image "$1" | python3 -c \
    'import json,sys; h=json.load(sys.stdin)["Docker"]["config"].get("Healthcheck"); print(h["Test"][1] if h else "")'
}

if ! have_image docker.io/library/debian:bookworm-slim; then
  rm -rf "$work/rootfs"
  debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log"
  # as slim as Docker's: no package cache, documentation or locales
  rm -rf "$work"/rootfs/var/cache/apt/*.bin "$work"/rootfs/var/cache/apt/archives/*.deb \
         "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/usr/share/doc/* "$work"/rootfs/usr/share/locale/*
  c=$(buildah from scratch)
  buildah copy "$c" "$work/rootfs" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd bash "$c"
  buildah commit -q --rm "$c" docker.io/library/debian:bookworm-slim
fi

if ! have_image docker.io/library/rust:1.95-bookworm; then
  toolchain=$(rustc --print sysroot)
  c=$(buildah from --pull-never docker.io/library/debian:bookworm-slim)
  buildah run "$c" -- sh -c 'apt-get update -q && apt-get install -y -q --no-install-recommends \
      ca-certificates curl gcc g++ libc6-dev make git && rm -rf /var/lib/apt/lists/*'
  # the CAs this machine trusts beyond Debian's (a network that inspects TLS)
  for ca in /usr/local/share/ca-certificates/*.crt; do
    [ -e "$ca" ] && buildah copy "$c" "$ca" /usr/local/share/ca-certificates/ >/dev/null
  done
  buildah run "$c" -- update-ca-certificates >/dev/null
  buildah run "$c" -- mkdir -p /usr/local/rust /usr/local/cargo/bin
  for part in bin lib libexec; do
    [ -d "$toolchain/$part" ] && buildah copy "$c" "$toolchain/$part" "/usr/local/rust/$part" >/dev/null
  done
  buildah config --env CARGO_HOME=/usr/local/cargo \
    --env PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$c"
  buildah commit -q --rm "$c" docker.io/library/rust:1.95-bookworm
fi

targets=(agent collector query ingester operator tools all-in-one)
for target in "${targets[@]}"; do
  echo "== building $target" >&2
  buildah bud --pull-never --layers --format docker -f deploy/docker/Dockerfile --target "$target" -t "spoor/$target:local" . >"$work/build-$target.log" 2>&1 \
    || { tail -40 "$work/build-$target.log"; exit 1; }
done

declare -A entry=([agent]=spoor-agent [collector]=spoor-collector [query]=spoor-query
                  [ingester]=spoor-ingester [operator]=spoor-operator [tools]=spoor-tracegen
                  [all-in-one]=spoor-all-in-one)
for target in "${targets[@]}"; do
  c=$(buildah from --pull-never "spoor/$target:local")
  user=$(buildah run "$c" -- id -u)
  [ "$user" = 10001 ] || { echo "$target runs as uid $user, not 10001" >&2; exit 1; }
  buildah run "$c" -- "${entry[$target]}" --help >/dev/null
  [ "$target" = tools ] || [ -n "$(healthcheck "spoor/$target:local")" ] \
    || { echo "$target has no HEALTHCHECK" >&2; exit 1; }
  binaries=$(buildah run "$c" -- du -sh /usr/local/bin | cut -f1)
  buildah rm "$c" >/dev/null
  echo "$target: ${entry[$target]} --help ok as uid $user; image $(buildah images --format '{{.Size}}' "spoor/$target:local"), binaries $binaries" >&2
done

# the all-in-one for real: host network (chroot isolation), its own health check
c=$(buildah from --pull-never spoor/all-in-one:local)
buildah run "$c" -- spoor-all-in-one --log-level=warn &
stop() {
  pkill -TERM -f '^/usr/local/bin/spoor-all-in-one --log-level=warn' || true
  wait 2>/dev/null || true
  buildah rm "$c" >/dev/null 2>&1 || true
}
trap stop EXIT
for _ in $(seq 100); do curl -fs localhost:14269/ >/dev/null && break; sleep 0.2; done
buildah run "$c" -- sh -c "$(healthcheck spoor/all-in-one:local)" >/dev/null
echo "all-in-one: its HEALTHCHECK command passes" >&2
t=$(buildah from --pull-never spoor/tools:local)
buildah run "$t" -- spoor-tracegen send --protocol=otlp-http --endpoint=http://localhost:4318 \
  --services=1 --traces=1 >/dev/null
buildah rm "$t" >/dev/null
for _ in $(seq 50); do
  curl -fs 'localhost:16686/api/traces?service=tracegen-svc-0' | grep -q '"traceID"' && break
  sleep 0.2
done
curl -fs 'localhost:16686/api/traces?service=tracegen-svc-0' | grep -q '"serviceName":"tracegen-svc-0"'
echo "all-in-one: a span sent with the tools image comes back from the query API" >&2
