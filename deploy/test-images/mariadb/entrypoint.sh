#!/bin/sh
# First start: initialise /var/lib/mysql with root's password from MARIADB_ROOT_PASSWORD, and a
# root account from MARIADB_ROOT_HOST (as the public image does). Then run mariadbd in front.
set -eu
if [ "${1#-}" != "$1" ]; then set -- mariadbd "$@"; fi
[ "$1" = mariadbd ] || exec "$@"
shift
datadir=/var/lib/mysql
mkdir -p /run/mysqld
chown mysql:mysql /run/mysqld "$datadir"
if [ ! -d "$datadir/mysql" ]; then
    : "${MARIADB_ROOT_PASSWORD:?set MARIADB_ROOT_PASSWORD}"
    # SQL string literal: double the quotes and backslashes.
    pw=$(printf '%s' "$MARIADB_ROOT_PASSWORD" | sed -e 's/\\/\\\\/g' -e "s/'/''/g")
    host=$(printf '%s' "${MARIADB_ROOT_HOST:-%}" | sed -e "s/'/''/g")
    mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db \
        --auth-root-authentication-method=socket >/dev/null
    sock=/run/mysqld/init.sock
    mariadbd --user=mysql --datadir="$datadir" --skip-networking --socket="$sock" &
    pid=$!
    i=0
    until mariadb-admin --socket="$sock" ping >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -lt 120 ] || { echo "mariadb: the first start did not answer" >&2; exit 1; }
        sleep 0.5
    done
    mariadb --socket="$sock" -uroot <<SQL
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('$pw');
CREATE USER IF NOT EXISTS 'root'@'$host' IDENTIFIED BY '$pw';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'$host' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
    kill "$pid"
    wait "$pid" || true
fi
exec mariadbd --user=mysql --datadir="$datadir" --bind-address=0.0.0.0 "$@"
