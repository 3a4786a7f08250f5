#!/usr/bin/env bash
# Installs the client tools the tests drive (psql, pgbench, openssl, psycopg2, SQLAlchemy, JDBC, ODBC,
# headless Chromium for the HTML access report, strace for the audit log's disk syncs) from
# Debian's packages when they are missing. Needs root; without it, tests
# that need a missing tool say so and fail.
set -u
need=()
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
command -v pgbench >/dev/null 2>&1 || need+=(postgresql-contrib)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# Python clients (the driver Superset and most notebooks use): Debian's packages for /usr/bin/python3.
/usr/bin/python3 -c 'import psycopg2' >/dev/null 2>&1 || need+=(python3-psycopg2)
/usr/bin/python3 -c 'import sqlalchemy' >/dev/null 2>&1 || need+=(python3-sqlalchemy)
# JDBC (Metabase, Tableau, DBeaver): Debian's driver jar, and a JDK for the single-file launcher.
[ -e /usr/share/java/postgresql.jar ] || need+=(libpostgresql-jdbc-java)
command -v java >/dev/null 2>&1 || need+=(default-jdk-headless)
# ODBC (the path Tableau and Power BI use): unixODBC's isql and the PostgreSQL driver.
command -v isql >/dev/null 2>&1 || need+=(unixodbc)
[ -e /usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so ] || [ -e /usr/lib/aarch64-linux-gnu/odbc/psqlodbcw.so ] || need+=(odbc-postgresql)
# A real browser renders the HTML access report in its test.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The audit durability test reads the writer's own system calls.
command -v strace >/dev/null 2>&1 || need+=(strace)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then echo "install-test-tools: missing ${need[*]} and not root" >&2; exit 0; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
  || echo "install-test-tools: apt-get install ${need[*]} failed" >&2
