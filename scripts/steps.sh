# Timed steps for scripts/test-all.sh (sourced, under `set -euo pipefail`).
#
#   steps_init DIR       each step's log goes to DIR/NAME.log
#   step NAME CMD...     run CMD now, its output as it comes
#   queue NAME CMD...    add CMD to the pool (run by run_queue)
#   queue_beside NAME CMD...
#                        the same for a step that needs little CPU (a
#                        guest that mostly waits): it runs beside the N
#                        others, not in one of their places
#   run_queue N          run the pool, at most N steps at a time (and the
#                        steps beside them), in the order queued; a step's
#                        output goes to its log, printed whole when it
#                        ends, so two steps never interleave
#   steps_table          every step's wall time, longest first, and the CPU
#                        time it and its children used (what decides how
#                        many steps 2 cores can run at once: a guest that
#                        waits uses far less than its wall time)
#
# A step is CMD run in a subshell of its own: `set -e` holds inside it (a
# function's first failing command fails the step). The first failing step
# ends the run: its log is printed last, the steps still running are
# stopped (SIGTERM to each one's process group, by PID; SIGKILL after 20 s:
# zonecopy-ci stops its QEMU and backends on SIGTERM), and the table says
# which passed, failed and were stopped. Ctrl-C or SIGTERM does the same.

set -m # each background step in a process group of its own (PGID = PID)

steps_logs=
steps_t0=$EPOCHREALTIME
declare -a steps_rows=()   # "SECONDS<TAB>VERDICT<TAB>NAME<TAB>CPU SECONDS"
declare -a steps_qname=() steps_qcmd=() steps_qbeside=()
declare -A steps_running=() # PID -> NAME
declare -A steps_beside=()  # PID -> 1 for a step beside the pool
declare -A steps_start=()   # PID -> start time

steps_init() {
	steps_logs=$1
	mkdir -p "$steps_logs"
	# 128 + the signal's number, as a shell killed by it would say.
	trap 'steps_stop_all; steps_table; exit 130' INT
	trap 'steps_stop_all; steps_table; exit 143' TERM
}

# Seconds since $1 (an EPOCHREALTIME), one decimal.
steps_since() {
	local now=${EPOCHREALTIME/./} then=${1/./}
	local us=$((now - then))
	printf '%d.%d' $((us / 1000000)) $((us % 1000000 / 100000))
}

steps_record() { # SECONDS VERDICT NAME
	steps_rows+=("$1	$2	$3	$(steps_cpu "$3")")
}

# Runs CMD... in a subshell that writes its CPU time (`times`: its own and
# its waited-for descendants', user and system) to DIR/.NAME.cpu at exit.
steps_timed() { # NAME CMD...
	local name=$1
	shift
	trap "times >'$steps_logs/.$name.cpu'" EXIT
	eval "$@"
}

# CPU seconds of step NAME (0 when it did not say: killed).
steps_cpu() {
	local f=$steps_logs/.$1.cpu
	if [ -s "$f" ]; then
		awk '{ for (i = 1; i <= NF; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] } }
			END { printf "%.1f", t }' "$f"
	else
		echo 0
	fi
}

# Stop every running step: SIGTERM to its process group, SIGKILL to what
# is left after 20 s.
steps_stop_all() {
	local pid n
	for pid in "${!steps_running[@]}"; do
		kill -TERM -- "-$pid" 2>/dev/null || true
	done
	for ((n = 0; n < 40; n++)); do
		local alive=0
		for pid in "${!steps_running[@]}"; do
			kill -0 -- "-$pid" 2>/dev/null && alive=1
		done
		[ "$alive" = 0 ] && break
		sleep 0.5
	done
	for pid in "${!steps_running[@]}"; do
		kill -KILL -- "-$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		steps_record "$(steps_since "${steps_start[$pid]}")" stopped "${steps_running[$pid]}"
		echo "=== stopped: ${steps_running[$pid]} (log: $steps_logs/${steps_running[$pid]}.log)"
		unset "steps_running[$pid]"
	done
}

step() {
	local name=$1 rc=0
	shift
	echo "=== $name: $*"
	local cmd
	printf -v cmd '%q ' "$@"
	(steps_timed "$name" "$cmd") </dev/null &
	steps_running[$!]=$name
	steps_start[$!]=$EPOCHREALTIME
	local pid=$!
	wait "$pid" || rc=$?
	local secs
	secs=$(steps_since "${steps_start[$pid]}")
	unset "steps_running[$pid]"
	if [ "$rc" != 0 ]; then
		steps_record "$secs" FAIL "$name"
		steps_table
		echo "=== FAIL: $name (exit status $rc, $secs s)"
		exit "$rc"
	fi
	steps_record "$secs" PASS "$name"
	echo "=== $name: PASS in $secs s"
}

queue() {
	local name=$1 cmd
	shift
	printf -v cmd '%q ' "$@"
	steps_qname+=("$name")
	steps_qcmd+=("$cmd")
	steps_qbeside+=(0)
}

queue_beside() {
	queue "$@"
	steps_qbeside[-1]=1
}

# Running steps that hold one of the pool's places.
steps_in_pool() {
	local pid n=0
	for pid in "${!steps_running[@]}"; do
		[ -n "${steps_beside[$pid]:-}" ] || n=$((n + 1))
	done
	echo "$n"
}

# Runs queued step I in the background, output to its log.
steps_launch() {
	local i=$1 name=${steps_qname[$1]}
	echo "=== start: $name (${steps_qcmd[$i]% })"
	(steps_timed "$name" "${steps_qcmd[$i]}") </dev/null >"$steps_logs/$name.log" 2>&1 &
	steps_running[$!]=$name
	steps_start[$!]=$EPOCHREALTIME
	[ "${steps_qbeside[$i]}" = 0 ] || steps_beside[$!]=1
}

run_queue() {
	local max=$1 next=0 pid rc name secs
	while [ "$next" -lt "${#steps_qname[@]}" ] || [ "${#steps_running[@]}" -gt 0 ]; do
		while [ "$next" -lt "${#steps_qname[@]}" ] &&
			{ [ "${steps_qbeside[$next]}" = 1 ] || [ "$(steps_in_pool)" -lt "$max" ]; }; do
			steps_launch "$next"
			next=$((next + 1))
		done
		rc=0
		wait -n -p pid "${!steps_running[@]}" || rc=$?
		name=${steps_running[$pid]}
		secs=$(steps_since "${steps_start[$pid]}")
		unset "steps_running[$pid]" "steps_beside[$pid]"
		if [ "$rc" != 0 ]; then
			steps_record "$secs" FAIL "$name"
			steps_stop_all
			echo "=== $name: FAIL (exit status $rc) in $secs s; its log ($steps_logs/$name.log):"
			cat "$steps_logs/$name.log"
			steps_table
			echo "=== FAIL: $name (exit status $rc; log: $steps_logs/$name.log)"
			exit "$rc"
		fi
		steps_record "$secs" PASS "$name"
		echo "=== $name: PASS in $secs s; its log:"
		cat "$steps_logs/$name.log"
	done
	steps_qname=()
	steps_qcmd=()
	steps_qbeside=()
}

steps_table() {
	echo "=== steps by wall time (logs in $steps_logs):"
	if [ "${#steps_rows[@]}" -gt 0 ]; then
		printf '%s\n' "${steps_rows[@]}" | sort -t '	' -k1,1nr |
			awk -F '\t' 'BEGIN { printf "%10s  %10s  %-7s %s\n", "wall", "CPU", "verdict", "step" }
				{ printf "%8.1f s  %8.1f s  %-7s %s\n", $1, $4, $2, $3; sum += $1; cpu += $4 }
				END { printf "%8.1f s  %8.1f s  (sum of the steps)\n", sum, cpu }'
	fi
	echo "$(steps_since "$steps_t0") s wall"
}
