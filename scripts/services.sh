#!/usr/bin/env bash
# Checks (and with "start", starts) the local PostgreSQL, Redis and RabbitMQ the mesh and its
# tests use. URLs come from the usual USERMESH_* overrides when set; defaults are the local ones.
set -euo pipefail
mode="${1:-check}"

pg_up()     { pg_isready -q -h 127.0.0.1 -p 5432; }
redis_up()  { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }
rabbit_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

start_pg()     { pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start; }
start_redis()  { redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log; }
start_rabbit() { rabbitmq-server -detached; }

wait_for() { # name probe seconds
  for _ in $(seq 1 "$3"); do "$2" && return 0; sleep 1; done
  echo "services: $1 did not come up within $3 s" >&2; return 1
}

status=0
for svc in pg:PostgreSQL:127.0.0.1:5432 redis:Redis:127.0.0.1:6379 rabbit:RabbitMQ:127.0.0.1:5672; do
  IFS=: read -r key name host port <<<"$svc"
  if "${key}_up"; then continue; fi
  if [ "$mode" = "start" ]; then
    echo "services: $name is not running on $host:$port; starting it" >&2
    "start_${key}" >/dev/null
    wait_for "$name" "${key}_up" 60 || status=1
  else
    echo "services: $name is not reachable on $host:$port. Start it (see README, 'Prerequisites') or run: scripts/services.sh start" >&2
    status=1
  fi
done
exit $status
