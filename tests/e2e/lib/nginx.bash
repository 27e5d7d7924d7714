# shellcheck shell=bash
# A real nginx serving artifacts for the pull transfer's tests, started and
# stopped by PID like every other server of the tests (hosts.bash): its own
# config and logs in $RF_TMP/NAME/, one process (master_process off), on a
# free port. Load after lib/sshd:
#
#	load lib/sshd
#	load lib/nginx
#
# What it serves, from $RF_TMP/NAME/www (RF_NGINX_WWW):
#   /FILE           as is, with ranges (a resumed download gets a 206)
#   /private/FILE   only with "Authorization: Bearer $RF_NGINX_TOKEN",
#                   else 401
#   /slow/FILE      at RF_NGINX_RATE bytes a second (default 64k)
#   /private/slow/FILE  both
# The access log ($RF_TMP/NAME/access.log) has one line a request:
# "METHOD URI STATUS BYTES_SENT RANGE AUTH_SEEN", AUTH_SEEN being yes or no
# (never the header itself).

RF_NGINX=${RF_NGINX:-/usr/sbin/nginx}
RF_NGINX_TOKEN=${RF_NGINX_TOKEN:-pull-test-token-4bd1c0}
export RF_NGINX RF_NGINX_TOKEN

# rf_nginx_config DIR LISTEN...: DIR/nginx.conf listening on each
# ADDRESS:PORT given, serving DIR/www.
rf_nginx_config() {
	local dir=$1 l

	shift
	mkdir -p "$dir/www/private/slow" "$dir/www/slow" "$dir/tmp"
	{
		cat <<EOF
daemon off;
master_process off;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 64; }
http {
	map \$http_authorization \$rf_auth { "" no; default yes; }
	log_format rf '\$request_method \$uri \$status \$bytes_sent "\$http_range" \$rf_auth';
	access_log $dir/access.log rf;
	client_body_temp_path $dir/tmp;
	proxy_temp_path $dir/tmp;
	fastcgi_temp_path $dir/tmp;
	uwsgi_temp_path $dir/tmp;
	scgi_temp_path $dir/tmp;
	types { application/octet-stream gz; }
	server {
EOF
		for l in "$@"; do
			printf '\t\tlisten %s;\n' "$l"
		done
		cat <<EOF
		root $dir/www;
		location /private/ {
			if (\$http_authorization != "Bearer $RF_NGINX_TOKEN") { return 401; }
		}
		location /slow/ { limit_rate ${RF_NGINX_RATE:-64k}; }
		location /private/slow/ {
			if (\$http_authorization != "Bearer $RF_NGINX_TOKEN") { return 401; }
			limit_rate ${RF_NGINX_RATE:-64k};
		}
	}
}
EOF
	} >"$dir/nginx.conf"
}

# rf_nginx_start [--ns NS] [--port PORT] NAME ADDRESS: nginx on ADDRESS and
# a free port, or PORT (several namespaces' stores behind one URL); in network
# namespace NS when given, then ADDRESS is one of its own. Waits, bounded,
# until it accepts connections. Exports RF_NGINX_PORT,
# RF_NGINX_PID, RF_NGINX_WWW, RF_NGINX_LOG (the access log) and
# RF_NGINX_URL (http://ADDRESS:PORT).
rf_nginx_start() {
	local ns='' want='' name addr dir port pid try
	local -a exec_in=()

	if [[ $1 == --ns ]]; then
		ns=$2
		exec_in=(ip netns exec "$ns")
		shift 2
	fi
	if [[ $1 == --port ]]; then
		want=$2
		shift 2
	fi
	name=$1
	addr=$2
	dir=$RF_TMP/$name
	for try in 1 2 3; do
		port=${want:-$(rf_free_port "$addr")} || return 1
		rf_nginx_config "$dir" "$addr:$port"
		if ! "$RF_NGINX" -t -q -c "$dir/nginx.conf" -e "$dir/error.log" 2>>"$dir/start.log"; then
			rf_log "nginx -t rejected $dir/nginx.conf (see $dir/start.log)"
			return 1
		fi
		"${exec_in[@]}" "$RF_NGINX" -c "$dir/nginx.conf" -e "$dir/error.log" \
			</dev/null >>"$dir/start.log" 2>&1 3>&- &
		pid=$!
		rf_track proc "$pid" "nginx-$name"
		if rf_poll 10 rf_nginx_up "$pid" "$addr" "$port" "$ns" && rf_pid_alive "$pid"; then
			break
		fi
		rf_kill_pid "$pid"
		rf_log "nginx on $addr:$port did not come up (try $try; see $dir/error.log)"
		pid=
	done
	[[ -n $pid ]] || return 1
	RF_NGINX_PORT=$port
	RF_NGINX_PID=$pid
	RF_NGINX_WWW=$dir/www
	RF_NGINX_LOG=$dir/access.log
	RF_NGINX_URL=http://$addr:$port
	export RF_NGINX_PORT RF_NGINX_PID RF_NGINX_WWW RF_NGINX_LOG RF_NGINX_URL
}

# Poll step of rf_nginx_start: nginx accepts on ADDRESS:PORT (in NS), or has
# died (the caller looks at the PID again).
rf_nginx_up() {
	rf_pid_alive "$1" || return 0
	if [[ -n $4 ]]; then
		ip netns exec "$4" bash -c 'exec 9<>"/dev/tcp/$1/$2"' rf "$2" "$3" 2>/dev/null
	else
		rf_port_open "$2" "$3"
	fi
}

# rf_nginx_requests [LOG]: the access log's lines (default RF_NGINX_LOG).
rf_nginx_requests() {
	cat "${1:-$RF_NGINX_LOG}" 2>/dev/null || true
}
