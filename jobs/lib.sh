# Shared by the job scripts: where to run, environment, lock, log, and what each qtrader exit
# code means. Cron starts jobs in $HOME with almost no environment: everything below is
# resolved from the checkout (or QTRADER_HOME), never from the caller's directory.
#   QTRADER_HOME      the checkout to run in: its qtrader.toml, .venv, data/, logs/
#                     [default: the folder above jobs/]
#   QTRADER_ENV_FILE  file of KEY=value lines to load      [default: /etc/qtrader.env, else
#                     $QTRADER_HOME/.env]; must be chmod 600 (or 400) and have Unix line endings
#   QTRADER_CONFIG    settings file                         [default: $QTRADER_HOME/qtrader.toml]
#   QTRADER_BIN       the qtrader command                   [default: .venv/bin/qtrader, else qtrader]
#   QTRADER_LOG_DIR   where each job appends its log        [default: $QTRADER_HOME/logs]
#   QTRADER_LOG_MAX_BYTES  a job log larger than this is rotated to <job>.log.1 [default: 10 MB]
#   QTRADER_LOCK_DIR  where the flock files live            [default: /tmp]
set -uo pipefail

job_name=$(basename "$0")

# A refusal before the log exists: on stderr, so cron mails it; exit 2 like a bad config.
refuse() {
    echo "$job_name: $*" >&2
    [ -n "${log_file:-}" ] && log "REFUSED: $*"
    exit 2
}

root=${QTRADER_HOME:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" 2>/dev/null || refuse "cannot change into QTRADER_HOME $root; set QTRADER_HOME to the checkout"
root=$(pwd)

# KEY=value lines, the same file systemd's EnvironmentFile= reads. It is parsed, not sourced:
# nothing in it runs. A CRLF file would give every value a trailing \r (QTRADER_DB=x.duckdb\r
# opens a new, empty database): refused, as is a file that others can read (it holds keys).
load_env_file() {
    local file=$1 mode line key value n=0
    [ -r "$file" ] || refuse "cannot read the env file $file"
    if grep -q $'\r' "$file"; then
        refuse "env file $file has Windows (CRLF) line endings; every value would end in \\r (a new, empty database). Fix it with: sed -i 's/\\r\$//' $file"
    fi
    mode=$(stat -L -c %a "$file") || refuse "cannot stat the env file $file"
    # an empty file (or /dev/null) holds no keys, whoever can read it
    if [ -s "$file" ] && (( (8#$mode & 8#077) != 0 )); then
        refuse "env file $file is readable or writable by others (mode $mode) and is where API keys go; fix it with: chmod 600 $file"
    fi
    while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        line=${line#"${line%%[![:space:]]*}"}
        case $line in '' | '#'*) continue ;; esac
        line=${line#export }
        key=${line%%=*}
        [[ $line == *=* && $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] \
            || refuse "env file $file line $n is not KEY=value"
        value=${line#*=}
        if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then value=${BASH_REMATCH[1]}; fi
        export "$key=$value"
    done < "$file"
}

env_file=${QTRADER_ENV_FILE:-}
if [ -z "$env_file" ]; then
    if [ -e /etc/qtrader.env ]; then env_file=/etc/qtrader.env; elif [ -e "$root/.env" ]; then env_file="$root/.env"; fi
fi
[ -n "$env_file" ] && load_env_file "$env_file"

# The checkout's settings, whatever directory cron started in (an explicit QTRADER_CONFIG
# wins; a relative one is relative to the checkout).
if [ -z "${QTRADER_CONFIG:-}" ] && [ -f "$root/qtrader.toml" ]; then
    export QTRADER_CONFIG="$root/qtrader.toml"
fi

qtrader=${QTRADER_BIN:-}
if [ -z "$qtrader" ]; then
    if [ -x "$root/.venv/bin/qtrader" ]; then qtrader="$root/.venv/bin/qtrader"; else qtrader=qtrader; fi
fi

log_dir=${QTRADER_LOG_DIR:-$root/logs}
mkdir -p "$log_dir" || refuse "cannot create the log folder $log_dir"
log_file="$log_dir/$job_name.log"

log() { printf '%s %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$job_name" "$*" >> "$log_file"; }

# Size-capped logs without logrotate: past QTRADER_LOG_MAX_BYTES the log moves to .1 (one
# generation kept), so each job's log stays under twice the cap. Done under the job's lock.
rotate_log() {
    local max=${QTRADER_LOG_MAX_BYTES:-10485760} size
    size=$(stat -c %s "$log_file" 2>/dev/null || echo 0)
    if (( size > max )); then mv -f "$log_file" "$log_file.1"; fi
}

# One run at a time: a second start exits at once, with a message, instead of piling up.
take_lock() {
    local lock="${QTRADER_LOCK_DIR:-/tmp}/qtrader-$job_name.lock"
    exec 9>"$lock"
    if ! flock -n 9; then
        log "another $job_name is still running (lock $lock); this run exits"
        echo "$job_name: another run holds $lock; exiting" >&2
        exit 0
    fi
    rotate_log
    announce
}

# The first line of every run: the settings it will trade with, as qtrader resolves them
# (mode, database, config file, limits). A configuration qtrader refuses stops the job here.
announce() {
    local line err
    err=$(mktemp)
    if line=$("$qtrader" config --brief 2> "$err"); then
        effective="$line"
        log "$line · env ${env_file:-none} · cwd $root"
    else
        local rc=$? why
        why=$(grep '^error: ' "$err" | tail -n 1)
        cat "$err" >> "$log_file"
        rm -f "$err"
        log "FAILED: the settings do not load (exit $rc): ${why#error: }"
        echo "$job_name: qtrader cannot load its settings (exit $rc): ${why#error: }; see $log_file" >&2
        exit "$rc"
    fi
    rm -f "$err"
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
           echo "$job_name: qtrader $1 could not open the database (exit 4): ${why:-locked}; see $log_file ($effective)" >&2 ;;
        *) log "FAILED: $1 exited $step_rc: $why"
           echo "$job_name: qtrader $1 failed (exit $step_rc)${why:+: $why}; see $log_file ($effective)" >&2 ;;
    esac
}
