# Shared by the job scripts: environment, lock, log, and what each qtrader exit code means.
#   QTRADER_ENV_FILE  file of KEY=value lines to load      [default: /etc/qtrader.env, else ./.env]
#   QTRADER_BIN       the qtrader command                   [default: .venv/bin/qtrader, else qtrader]
#   QTRADER_LOG_DIR   where each job appends its log        [default: ./logs]
#   QTRADER_LOCK_DIR  where the flock files live            [default: /tmp]
set -uo pipefail

job_name=$(basename "$0")
root=$(cd "$(dirname "$0")/.." && pwd)

env_file=${QTRADER_ENV_FILE:-}
if [ -z "$env_file" ]; then
    if [ -r /etc/qtrader.env ]; then env_file=/etc/qtrader.env; elif [ -r "$root/.env" ]; then env_file="$root/.env"; fi
fi
if [ -n "$env_file" ]; then
    set -a
    # shellcheck disable=SC1090
    . "$env_file"
    set +a
fi

qtrader=${QTRADER_BIN:-}
if [ -z "$qtrader" ]; then
    if [ -x "$root/.venv/bin/qtrader" ]; then qtrader="$root/.venv/bin/qtrader"; else qtrader=qtrader; fi
fi

log_dir=${QTRADER_LOG_DIR:-$root/logs}
mkdir -p "$log_dir"
log_file="$log_dir/$job_name.log"

log() { printf '%s %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$job_name" "$*" >> "$log_file"; }

# One run at a time: a second start exits at once, with a message, instead of piling up.
take_lock() {
    local lock="${QTRADER_LOCK_DIR:-/tmp}/qtrader-$job_name.lock"
    exec 9>"$lock"
    if ! flock -n 9; then
        log "another $job_name is still running (lock $lock); this run exits"
        echo "$job_name: another run holds $lock; exiting" >&2
        exit 0
    fi
}

# Run one qtrader step; its output goes to the log. Sets step_rc. A failure (1, 2, …) and a
# database that stayed locked (4) are also printed on stderr with qtrader's own error line,
# so cron mails them: a locked database stops reconcile and the stop repairs too.
step() {
    log "start: qtrader $*"
    local err why
    err=$(mktemp)
    "$qtrader" "$@" >> "$log_file" 2> "$err"
    step_rc=$?
    cat "$err" >> "$log_file"
    why=$(grep '^error: ' "$err" | tail -n 1)
    why=${why#error: }
    rm -f "$err"
    case $step_rc in
        0) log "done: $1" ;;
        3) log "halted: $1 (kill switch or circuit breaker); qtrader resume lifts it" ;;
        4) log "BUSY: $1 could not open the database: $why"
           echo "$job_name: qtrader $1 could not open the database (exit 4): ${why:-locked}; see $log_file" >&2 ;;
        *) log "FAILED: $1 exited $step_rc: $why"
           echo "$job_name: qtrader $1 failed (exit $step_rc)${why:+: $why}; see $log_file" >&2 ;;
    esac
}
