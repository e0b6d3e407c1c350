#!/bin/sh
# Runs the role named by the first argument with DATA_DIR under /data, so
# that one volume per container holds its state. exec keeps the binary as
# PID 1's child-free replacement: SIGTERM from `docker stop` reaches it.
set -e
role="$1"
case "$role" in
  reverse_proxy|cluster_node) shift ;;
  *) echo "usage: reverse_proxy [PORT] | cluster_node PROXY_HOST PROXY_PORT" >&2; exit 2 ;;
esac
exec "/usr/local/bin/$role" "$@"
