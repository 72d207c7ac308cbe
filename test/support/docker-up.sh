#!/usr/bin/env bash
# Makes sure a Docker Engine answers on /var/run/docker.sock, idempotently: installs docker.io (and busybox-static,
# the test images' root filesystem) with apt when missing, and starts dockerd in the background when `docker info`
# fails. Containers get no network from Docker (--bridge=none --iptables=false): nothing a test runs can send
# traffic off this machine.
set -euo pipefail

need_install=()
command -v dockerd >/dev/null 2>&1 || need_install+=(docker.io)
dpkg -s busybox-static >/dev/null 2>&1 || need_install+=(busybox-static)
# The driver's TLS tests make their certificates with openssl (present on most hosts already).
command -v openssl >/dev/null 2>&1 || need_install+=(openssl)
if [ ${#need_install[@]} -gt 0 ]; then
  echo "docker-up: installing ${need_install[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_install[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
  exit 0
fi

echo "docker-up: starting dockerd" >&2
setsid dockerd --bridge=none --iptables=false >/var/log/dockerd.log 2>&1 < /dev/null &

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    echo "docker-up: dockerd is up" >&2
    exit 0
  fi
  sleep 1
done
echo "docker-up: dockerd did not answer within 60 s; see /var/log/dockerd.log" >&2
exit 1
