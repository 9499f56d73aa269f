#!/bin/sh
# Renders nginx/turnout.conf.template for compose and runs nginx in the foreground.
# Upstreams name the compose services; `resolve` (nginx >= 1.27.3) follows replicas as
# they come and go, through Docker's DNS.
set -eu
run=/tmp/nginx
mkdir -p "$run"
ln -sf /dev/stdout "$run/nginx-access.log"
ln -sf /dev/stderr "$run/nginx-error.log"
upstream() { # NAME HOST:PORT
  printf '        zone turnout_%s 64k;\\n        resolver 127.0.0.11 valid=5s ipv6=off;\\n        server %s resolve max_fails=0;' "$1" "$2"
}
rate="${TURNOUT_LOGIN_RATE:-50}"
sed \
  -e "s|@LISTEN@|8080|" \
  -e "s|@RUN_DIR@|$run|g" \
  -e "s|@STATIC_ROOT@|/srv/turnout/static|" \
  -e "s|@AUTH_SERVERS@|$(upstream auth auth:8081)|" \
  -e "s|@OTP_SERVERS@|$(upstream otp otp:8082)|" \
  -e "s|@BALLOT_SERVERS@|$(upstream ballot ballot:8083)|" \
  -e "s|@LOGIN_RATE@|$rate|" \
  -e "s|@LOGIN_BURST@|$((rate * 4))|" \
  -e "s|@TLS@||" \
  /etc/turnout/turnout.conf.template > "$run/nginx.conf"
nginx -t -c "$run/nginx.conf"
exec nginx -c "$run/nginx.conf"
