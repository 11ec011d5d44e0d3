#!/usr/bin/env bash
# Start a local PostgreSQL from Debian's packages for the tests, and print its URL on stdout.
#
#   export IVR_TEST_POSTGRES_URL="$(bash .ci/postgres.sh)"
#
# Idempotent: installs `postgresql` only if missing, creates a cluster only if there is none,
# starts it only if it is down, and (re)sets the test role's password each time. Needs root.
# The role may create databases because every test module works in a scratch database of its own.
# Everything but the URL goes to stderr, so the line above captures exactly the URL.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# Overridable; the password goes into a URL as it is, so keep it to URL-safe characters.
ROLE=${IVR_PG_ROLE:-ivr}
PASSWORD=${IVR_PG_PASSWORD:-ivr-test-only}
DATABASE=${IVR_PG_DATABASE:-ivr_test}

say() { printf 'postgres.sh: %s\n' "$*" >&2; }

if ! command -v pg_lsclusters >/dev/null || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
  say "installing postgresql"
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >/dev/null
fi

# The newest installed server version (15 on Debian 12); not hard-coded so Debian 13 works too.
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {found=1} END {exit !found}'; then
  say "creating cluster $version/main"
  pg_createcluster "$version" main >&2
fi
port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')

if ! pg_ctlcluster "$version" main status >/dev/null 2>&1; then
  say "starting cluster $version/main on port $port"
  pg_ctlcluster "$version" main start >&2
fi
for _ in $(seq 1 60); do
  pg_isready -q -h 127.0.0.1 -p "$port" && break
  sleep 0.5
done
pg_isready -q -h 127.0.0.1 -p "$port" || { say "PostgreSQL did not become ready"; exit 1; }

psql_admin() { runuser -u postgres -- psql -p "$port" -v ON_ERROR_STOP=1 -qtA "$@"; }

if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != "1" ]; then
  say "creating role $ROLE"
  psql_admin -c "CREATE ROLE \"$ROLE\" LOGIN CREATEDB" >&2
fi
psql_admin -c "ALTER ROLE \"$ROLE\" LOGIN CREATEDB PASSWORD '$PASSWORD'" >&2
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" != "1" ]; then
  say "creating database $DATABASE"
  psql_admin -c "CREATE DATABASE \"$DATABASE\" OWNER \"$ROLE\"" >&2
fi

printf 'postgresql+psycopg://%s:%s@127.0.0.1:%s/%s\n' "$ROLE" "$PASSWORD" "$port" "$DATABASE"
