#!/usr/bin/env bash
# Installs what the benchmarks compare against, from Debian's packages when
# missing: pgbench (postgresql-contrib) and PgBouncer. Needs root.
set -u
need=()
command -v pgbench >/dev/null 2>&1 || need+=(postgresql-contrib)
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then echo "install-bench-tools: missing ${need[*]} and not root" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
  || { echo "install-bench-tools: apt-get install ${need[*]} failed" >&2; exit 1; }
