#!/usr/bin/env bash
# Make sure Redis (and, with --postgres, PostgreSQL) answer on loopback; install Debian's packages if missing.
set -euo pipefail

need_apt_update=1
apt_install() {
  if [ "$need_apt_update" = 1 ]; then apt-get update -qq >/dev/null; need_apt_update=0; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 6379; then
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p /tmp/ehrsum-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp/ehrsum-redis --logfile /tmp/ehrsum-redis/redis.log
  for _ in $(seq 50); do port_open 6379 && break; sleep 0.1; done
  echo "services: started redis-server on 127.0.0.1:6379" >&2
fi

if [ "${1:-}" = "--postgres" ] && ! port_open 5432; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 100); do port_open 5432 && break; sleep 0.2; done
  port_open 5432 || { echo "services: PostgreSQL did not start on 127.0.0.1:5432" >&2; exit 1; }
  echo "services: started PostgreSQL $version on 127.0.0.1:5432" >&2
fi
