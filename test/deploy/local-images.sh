# shellcheck shell=bash
# Base images for the deploy test, made here because no registry can be reached: Debian bookworm
# from debootstrap, and from it stand-ins for node:20-bookworm-slim, redis and prom/prometheus.
# Each is built once per machine and kept (tags carry what they were made from); the project's
# own images are rebuilt by compose on every run. Sourced by compose-bring-up.sh.

DEBIAN_BASE=localhost/fmnist-test/debian:bookworm
NODE_BASE_IMAGE=localhost/fmnist-test/node:$(node --version | tr -d v)-bookworm-slim
REDIS_IMAGE=localhost/fmnist-test/redis:bookworm
PROMETHEUS_IMAGE=localhost/fmnist-test/prometheus:bookworm
IMAGES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/images" && pwd)

build_local_images() {
  build_debian_base
  build_node_base
  build_from_debian "$REDIS_IMAGE" redis.Dockerfile
  build_from_debian "$PROMETHEUS_IMAGE" prometheus.Dockerfile
}

# The first Debian mirror of this machine's apt sources (not the security one).
debian_mirror() {
  cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | sed -nE 's#^(URIs:|deb)[[:space:]]+(https?://[^ ]+).*#\2#p' | grep -v security | sed -n 1p || true
}

build_debian_base() {
  podman image exists "$DEBIAN_BASE" && return 0
  local mirror rootfs
  mirror=$(debian_mirror)
  [ -n "$mirror" ] || { echo "no Debian mirror in the apt sources" >&2; return 1; }
  rootfs=$(mktemp -d "$WORK_DIR/rootfs.XXXX")
  $SUDO debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$LOG_DIR/debootstrap.log" 2>&1 \
    || { tail -20 "$LOG_DIR/debootstrap.log" >&2; return 1; }
  $SUDO rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  $SUDO tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$DEBIAN_BASE" >/dev/null
  $SUDO rm -rf "$rootfs"
}

# This machine's Node (binary, npm, headers for node-gyp) and CA bundle on the Debian base.
build_node_base() {
  podman image exists "$NODE_BASE_IMAGE" && return 0
  local node_bin prefix context
  node_bin=$(readlink -f "$(command -v node)")
  prefix=$(dirname "$(dirname "$node_bin")")
  context=$(mktemp -d "$WORK_DIR/node-base.XXXX")
  cp "$node_bin" "$context/node"
  cp -r "$(npm root -g)/npm" "$context/npm"
  cp -r "$prefix/include/node" "$context/include-node"
  cat /etc/ssl/certs/ca-certificates.crt >"$context/host-ca.crt" 2>/dev/null || : >"$context/host-ca.crt"
  podman build --pull=never --build-arg "DEBIAN_BASE=$DEBIAN_BASE" -f "$IMAGES_DIR/node-base.Dockerfile" -t "$NODE_BASE_IMAGE" "$context" \
    >"$LOG_DIR/node-base-build.log" 2>&1 || { tail -20 "$LOG_DIR/node-base-build.log" >&2; return 1; }
  rm -rf "$context"
}

build_from_debian() {
  local image=$1 dockerfile=$2 log
  podman image exists "$image" && return 0
  log="$LOG_DIR/$(basename "$dockerfile" .Dockerfile)-build.log"
  podman build --pull=never --build-arg "DEBIAN_BASE=$DEBIAN_BASE" -f "$IMAGES_DIR/$dockerfile" -t "$image" "$IMAGES_DIR" \
    >"$log" 2>&1 || { tail -20 "$log" >&2; return 1; }
}
