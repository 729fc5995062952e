# shellcheck shell=bash
# The container engine of the deploy test, as /work/shared/containers/README.md found it to work
# on these machines: podman with runc (crun refuses the cgroup layout), Debian's docker-compose
# 1.29.2 talking to podman's Docker-compatible API, and images built from a local Debian root
# file system because there is no image registry to pull from. Sourced by compose-bring-up.sh.

# Installs podman, runc, docker-compose and debootstrap unless they are there (idempotent).
install_container_engine() {
  local missing=()
  for tool in podman runc docker-compose debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      podman runc netavark aardvark-dns fuse-overlayfs slirp4netns uidmap catatonit iptables debootstrap docker-compose
  fi
  configure_podman
}

# runc, cgroupfs, file events, and open-file limits the sandbox allows (podman otherwise asks
# for more than the hard limit and every container fails to start).
configure_podman() {
  local limit conf=/etc/containers/containers.conf
  limit=$(ulimit -Hn)
  $SUDO mkdir -p /etc/containers
  $SUDO tee "$conf" >/dev/null <<CONF
[containers]
default_ulimits = ["nofile=$limit:$limit", "nproc=16384:16384"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
[network]
network_backend = "netavark"
CONF
}

# Starts podman's Docker-compatible API on a socket of our own; sets DOCKER_HOST and API_PID.
start_podman_api() {
  local socket=$1
  rm -f "$socket"
  podman system service --time=0 "unix://$socket" >"$LOG_DIR/podman-api.log" 2>&1 &
  API_PID=$!
  for _ in $(seq 1 100); do [ -S "$socket" ] && break; sleep 0.2; done
  [ -S "$socket" ] || { echo "podman's API did not come up; see $LOG_DIR/podman-api.log" >&2; return 1; }
  export DOCKER_HOST="unix://$socket"
}

# Stops the API service started by start_podman_api (by its pid).
stop_podman_api() {
  if [ -n "${API_PID:-}" ]; then
    kill "$API_PID" 2>/dev/null || true
    wait "$API_PID" 2>/dev/null || true
    API_PID=""
  fi
}
