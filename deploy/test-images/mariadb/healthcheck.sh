#!/bin/sh
# The public image's checks that the compose file uses, as root over the socket:
#   --connect             the server accepts a connection
#   --innodb_initialized  InnoDB has started
set -eu
for check in "$@"; do
    case "$check" in
    --connect) mariadb-admin -uroot ping >/dev/null ;;
    --innodb_initialized)
        [ "$(mariadb -uroot -N -B -e "SELECT 1 FROM information_schema.ENGINES WHERE ENGINE='InnoDB' AND SUPPORT IN ('YES','DEFAULT')")" = 1 ] ;;
    *) echo "healthcheck.sh: unknown check $check" >&2; exit 2 ;;
    esac
done
