#!/bin/sh
# The public image's environment: RABBITMQ_DEFAULT_USER/PASS become the first user (an
# administrator), written to a conf.d file; the Erlang cookie lives in the data volume.
set -eu
[ "$1" = rabbitmq-server ] || exec "$@"
dir=/var/lib/rabbitmq
if [ ! -s "$dir/.erlang.cookie" ]; then
    (umask 077 && head -c 30 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/.erlang.cookie")
fi
chown -R rabbitmq:rabbitmq "$dir"
chmod 0400 "$dir/.erlang.cookie"
{
    echo 'listeners.tcp.default = 5672'
    echo 'management.tcp.port = 15672'
    if [ -n "${RABBITMQ_DEFAULT_USER:-}" ]; then
        echo "default_user = $RABBITMQ_DEFAULT_USER"
        echo "default_pass = ${RABBITMQ_DEFAULT_PASS:?set RABBITMQ_DEFAULT_PASS}"
        echo 'default_user_tags.administrator = true'
        echo 'loopback_users = none'
    fi
} >/etc/rabbitmq/conf.d/10-defaults.conf
chmod 0644 /etc/rabbitmq/conf.d/10-defaults.conf
exec runuser -u rabbitmq -- /usr/lib/rabbitmq/bin/rabbitmq-server
