#!/usr/bin/env bash
# Install (from Debian's packages) and start a local PostgreSQL for the database tests.
# Prints the SQLAlchemy URL of a superuser on the last line.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$version main$"; then
  pg_createcluster "$version" main >&2
fi
if ! pg_lsclusters -h | grep -q "^$version *main .*online"; then
  pg_ctlcluster "$version" main start >&2
fi
port=$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $3}')
su postgres -c "psql -q -p $port -c \"ALTER USER postgres PASSWORD 'ci-pg-6c1f0e9b52'\"" >&2
echo "postgresql+psycopg://postgres:ci-pg-6c1f0e9b52@127.0.0.1:$port/postgres"
