#!/usr/bin/env bash
# Deploy a commit of llm-gateway to a host; roll back by itself when the new release is not healthy.
#
# Usage: scripts/deploy.sh [options] [COMMIT]        (COMMIT: default HEAD)
#        scripts/rollback.sh [options] [RELEASE]      (on demand; see scripts/rollback.sh)
#
# Here: checks the tree is clean, runs the tests (scripts/test), packs COMMIT with `git archive`.
# On the target (ssh, or a local shell with DEPLOY_HOST=local), under DEPLOY_PATH:
#   releases/<UTC timestamp>-<sha12>/   the commit's files, RELEASE (metadata), .venv (a fresh venv)
#   current  -> releases/<new>          switched atomically (rename of a symlink)
#   previous -> releases/<old>          what `scripts/rollback.sh` goes back to
#   history                             one line per deploy / rollback
# steps: unpack, venv + install, `llm-gateway db migrate`, switch `current`, restart the services,
# wait for DEPLOY_HEALTH_URL to answer 200; if it does not, switch back, restart, wait again.
#
# Options (each has an environment variable; an option wins over it):
#   --host HOST          DEPLOY_HOST            ssh host, or "local" to run the target side here   (required)
#   --user USER          DEPLOY_USER            ssh user (default: ssh's own default)
#   --ssh-port PORT      DEPLOY_SSH_PORT        ssh port (default: ssh's own default)
#   --ssh-opts "OPTS"    DEPLOY_SSH_OPTS        more ssh options, e.g. "-i ~/.ssh/deploy"
#   --path DIR           DEPLOY_PATH            base directory on the target (default /opt/llm-gateway)
#   --python PY          DEPLOY_PYTHON          Python >= 3.11 on the target (default python3.11)
#   --config FILE        DEPLOY_CONFIG          config the services run with, used to migrate; relative
#                                               = inside the release (default config/litellm.yaml)
#   --env-file FILE      DEPLOY_ENV_FILE        sourced for the migration when readable
#                                               (default /etc/llm-gateway/llm-gateway.env)
#   --data-dir DIR       DEPLOY_DATA_DIR        GATEWAY_DATA_DIR for the migration (set it as the unit does)
#   --migrate-cmd CMD    DEPLOY_MIGRATE_CMD     replaces the migration (bash -c; RELEASE_DIR and CONFIG are
#                                               set), e.g. to run it as the service user; "true" skips it
#   --restart-cmd CMD    DEPLOY_RESTART_CMD     default: sudo -n systemctl restart llm-gateway.service llm-gateway-learn.service
#   --status-cmd CMD     DEPLOY_STATUS_CMD      default: systemctl is-active llm-gateway.service llm-gateway-learn.service
#                                               ("" disables; failing 3 checks in a row fails the health wait early)
#   --health-url URL     DEPLOY_HEALTH_URL      readiness URL, fetched on the target (default http://127.0.0.1:8080/health/ready)
#   --health-timeout S   DEPLOY_HEALTH_TIMEOUT  seconds to wait for it (default 90)
#   --public-url URL     DEPLOY_PUBLIC_URL      the gateway's URL for the summary (default: the health URL's origin)
#   --pip-args "ARGS"    DEPLOY_PIP_ARGS        extra `pip install` arguments, e.g. "--no-index --find-links /srv/wheels"
#   --venv-from DIR      DEPLOY_VENV_FROM       no pip: the release venv reuses DIR's installed packages
#                                               (a venv on the target with the dependencies; CI and tests)
#   --keep N             DEPLOY_KEEP            releases to keep (default 5; current and previous always stay)
#   --skip-tests                                do not run scripts/test first
#   --allow-dirty                               deploy although the working tree has uncommitted changes
# The restart and status commands run on the target with DEPLOY_PATH, DEPLOY_RELEASE (name) and
# DEPLOY_RELEASE_DIR exported.
#
# Exit status: 0 deployed; 1 failed before the switch (nothing changed on the target); 2 the new
# release was not healthy and the previous one serves again; 3 not healthy and the rollback did
# not help (or there was nothing to roll back to): act now.
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
ROOT="$(cd "$(dirname "$SELF")/.." && pwd)"

DEPLOY_VARS=(DEPLOY_PATH DEPLOY_PYTHON DEPLOY_CONFIG DEPLOY_ENV_FILE DEPLOY_DATA_DIR DEPLOY_MIGRATE_CMD
  DEPLOY_RESTART_CMD DEPLOY_STATUS_CMD DEPLOY_HEALTH_URL DEPLOY_HEALTH_TIMEOUT DEPLOY_PUBLIC_URL
  DEPLOY_PIP_ARGS DEPLOY_VENV_FROM DEPLOY_KEEP DEPLOY_HOST)

defaults() {
  : "${DEPLOY_HOST:=}" "${DEPLOY_USER:=}" "${DEPLOY_SSH_PORT:=}" "${DEPLOY_SSH_OPTS:=}"
  : "${DEPLOY_PATH:=/opt/llm-gateway}" "${DEPLOY_PYTHON:=python3.11}" "${DEPLOY_CONFIG:=config/litellm.yaml}"
  : "${DEPLOY_ENV_FILE:=/etc/llm-gateway/llm-gateway.env}" "${DEPLOY_DATA_DIR:=}" "${DEPLOY_MIGRATE_CMD:=}"
  : "${DEPLOY_RESTART_CMD=sudo -n systemctl restart llm-gateway.service llm-gateway-learn.service}"
  : "${DEPLOY_STATUS_CMD=systemctl is-active llm-gateway.service llm-gateway-learn.service}"
  : "${DEPLOY_HEALTH_URL:=http://127.0.0.1:8080/health/ready}" "${DEPLOY_HEALTH_TIMEOUT:=90}"
  : "${DEPLOY_PUBLIC_URL:=}" "${DEPLOY_PIP_ARGS:=}" "${DEPLOY_VENV_FROM:=}" "${DEPLOY_KEEP:=5}"
  if [ -z "$DEPLOY_PUBLIC_URL" ]; then
    DEPLOY_PUBLIC_URL="$(printf '%s' "$DEPLOY_HEALTH_URL" | sed -E 's#^([a-z]+://[^/]+).*#\1#')"
  fi
}

say() { printf '%s\n' "$*"; }
die() { printf 'deploy: %s\n' "$*" >&2; exit "${2:-1}"; }

# ------------------------------------------------------------------------------------------------
# Target side: runs on the host (bash deploy.sh __target ACTION ...), settings in DEPLOY_* variables.
# ------------------------------------------------------------------------------------------------

release_of() {  # the release name a link (current / previous) points at, or nothing
  local link="$DEPLOY_PATH/$1"
  [ -L "$link" ] || return 0
  basename "$(readlink "$link")"
}

set_link() {  # set_link NAME RELEASE: NAME -> releases/RELEASE, atomically (rename over the old link)
  local tmp="$DEPLOY_PATH/.$1.tmp.$$"
  if [ -z "$2" ]; then rm -f "$DEPLOY_PATH/$1"; return 0; fi
  ln -sfn "releases/$2" "$tmp"
  mv -Tf "$tmp" "$DEPLOY_PATH/$1"
}

record() { printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >> "$DEPLOY_PATH/history"; }

http_ok() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -o /dev/null --max-time 3 "$1" 2>/dev/null
  else
    "$TARGET_PY" -c 'import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=3).status == 200 else 1)
except Exception:
    sys.exit(1)' "$1"
  fi
}

run_hook() {  # run_hook RELEASE COMMAND: a restart/status command, with the release exported
  local dir="$DEPLOY_PATH/releases/$1"
  # fd 9 is the deploy lock: a service started by the command must not keep holding it.
  DEPLOY_RELEASE="$1" DEPLOY_RELEASE_DIR="$dir" bash -c "$2" </dev/null 9>&-
}

wait_healthy() {  # wait_healthy RELEASE: 0 once DEPLOY_HEALTH_URL answers 200
  local deadline=$((SECONDS + DEPLOY_HEALTH_TIMEOUT)) down=0
  while [ "$SECONDS" -lt "$deadline" ]; do
    if http_ok "$DEPLOY_HEALTH_URL"; then return 0; fi
    if [ -n "$DEPLOY_STATUS_CMD" ]; then
      if run_hook "$1" "$DEPLOY_STATUS_CMD" >/dev/null 2>&1; then down=0; else down=$((down + 1)); fi
      if [ "$down" -ge 3 ]; then say "    the service is not running (status command failed 3 times)"; return 1; fi
    fi
    sleep 0.5
  done
  say "    $DEPLOY_HEALTH_URL did not answer 200 within ${DEPLOY_HEALTH_TIMEOUT}s"
  return 1
}

restart_and_wait() {  # restart_and_wait RELEASE
  say "==> restarting services: $DEPLOY_RESTART_CMD"
  if ! run_hook "$1" "$DEPLOY_RESTART_CMD"; then
    say "    the restart command failed"
    return 1
  fi
  say "==> waiting for $DEPLOY_HEALTH_URL (up to ${DEPLOY_HEALTH_TIMEOUT}s)"
  wait_healthy "$1"
}

services_state() {
  [ -n "$DEPLOY_STATUS_CMD" ] || { say "(no status command)"; return 0; }
  local out status=0
  out="$(run_hook "$(release_of current)" "$DEPLOY_STATUS_CMD" 2>&1)" || status=$?
  out="$(printf '%s' "$out" | tr '\n' ' ')"
  if [ "$status" = 0 ]; then say "${out:-running} (status command ok)"; else say "${out} (status command exit $status)"; fi
}

summary() {  # summary RELEASE PREVIOUS
  local dir="$DEPLOY_PATH/releases/$1"
  say "    release:  $1 ($(sed -n 's/^commit=//p' "$dir/RELEASE" 2>/dev/null))"
  say "    path:     $dir"
  say "    previous: ${2:-none}"
  say "    health:   $DEPLOY_HEALTH_URL -> ready"
  say "    gateway:  $DEPLOY_PUBLIC_URL (OpenAI base URL $DEPLOY_PUBLIC_URL/v1, metrics $DEPLOY_PUBLIC_URL/metrics)"
  say "    services: $(services_state)"
  say "    next:     llm-gateway verify $DEPLOY_PUBLIC_URL --api-key \$LLM_GATEWAY_API_KEY"
}

make_venv() {  # make_venv RELEASE_DIR
  local rel="$1"
  if [ -n "$DEPLOY_VENV_FROM" ]; then
    # Reuse DEPLOY_VENV_FROM's packages: a bare venv whose .pth puts the release's own code first,
    # then DEPLOY_VENV_FROM's site-packages; the console script is written here (pip does it otherwise).
    "$DEPLOY_VENV_FROM/bin/python" -m venv --without-pip "$rel/.venv"
    local site base
    site="$("$rel/.venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    base="$("$DEPLOY_VENV_FROM/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    printf '%s\n%s\n' "$rel" "$base" > "$site/llm_gateway_release.pth"
    printf '#!%s\nimport sys\nfrom proxy.cli import main\nsys.exit(main())\n' "$rel/.venv/bin/python" \
      > "$rel/.venv/bin/llm-gateway"
    chmod 0755 "$rel/.venv/bin/llm-gateway"
    "$rel/.venv/bin/python" -m compileall -q "$rel/proxy" "$rel/plugins" "$rel/learning" "$rel/store" >/dev/null || true
  else
    "$DEPLOY_PYTHON" -m venv "$rel/.venv"
    # shellcheck disable=SC2086  # DEPLOY_PIP_ARGS is a list of arguments
    "$rel/.venv/bin/python" -m pip install --quiet --disable-pip-version-check $DEPLOY_PIP_ARGS "$rel"
  fi
  "$rel/.venv/bin/llm-gateway" --help >/dev/null
}

migrate() {  # migrate RELEASE_DIR
  local rel="$1" config="$DEPLOY_CONFIG"
  case "$config" in /*) ;; *) config="$rel/$config" ;; esac
  if [ -n "$DEPLOY_MIGRATE_CMD" ]; then
    say "==> migrating the database: $DEPLOY_MIGRATE_CMD"
    (cd "$rel" && RELEASE_DIR="$rel" CONFIG="$config" bash -c "$DEPLOY_MIGRATE_CMD" </dev/null)
    return
  fi
  say "==> migrating the database (config $config)"
  (
    cd "$rel"
    # shellcheck source=/dev/null  # the operator's env file (KEY=value lines)
    if [ -r "$DEPLOY_ENV_FILE" ]; then set -a; . "$DEPLOY_ENV_FILE"; set +a; fi
    if [ -n "$DEPLOY_DATA_DIR" ]; then export GATEWAY_DATA_DIR="$DEPLOY_DATA_DIR"; fi
    "$rel/.venv/bin/llm-gateway" db migrate --config "$config" </dev/null
  )
}

prune() {
  local keep="$DEPLOY_KEEP" current previous name
  current="$(release_of current)"; previous="$(release_of previous)"
  # Release names start with a UTC timestamp: name order is age order.
  find "$DEPLOY_PATH/releases" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -r | tail -n +"$((keep + 1))" |
    while read -r name; do
      if [ "$name" != "$current" ] && [ "$name" != "$previous" ]; then
        rm -rf "${DEPLOY_PATH:?}/releases/$name" && say "    pruned old release $name"
      fi
    done
}

lock() {
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$DEPLOY_PATH/.deploy.lock"
    flock -n 9 || die "another deploy or rollback is running on this target ($DEPLOY_PATH/.deploy.lock)"
  fi
}

target_deploy() {  # target_deploy NAME SHA ARCHIVE
  local name="$1" sha="$2" archive="$3"
  local rel="$DEPLOY_PATH/releases/$name" old old_previous
  mkdir -p "$DEPLOY_PATH/releases"
  lock
  TARGET_PY="${DEPLOY_VENV_FROM:+$DEPLOY_VENV_FROM/bin/python}"; TARGET_PY="${TARGET_PY:-$DEPLOY_PYTHON}"
  "$TARGET_PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
    die "$TARGET_PY on the target is missing or older than Python 3.11"
  old="$(release_of current)"; old_previous="$(release_of previous)"
  [ ! -e "$rel" ] || die "release $name exists already"

  say "==> unpacking commit $sha into $rel"
  mkdir "$rel.partial"
  tar -xzf "$archive" -C "$rel.partial"
  printf 'name=%s\ncommit=%s\ndeployed_at=%s\ndeployed_by=%s\n' "$name" "$sha" \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${DEPLOY_BY:-$(id -un)}" > "$rel.partial/RELEASE"
  mv "$rel.partial" "$rel"

  say "==> creating the virtual environment${DEPLOY_VENV_FROM:+ (packages from $DEPLOY_VENV_FROM)}"
  set +e
  (set -e; make_venv "$rel"; migrate "$rel")  # not in a condition: `set -e` must hold inside
  local prepared=$?
  set -e
  if [ "$prepared" != 0 ]; then
    rm -rf "$rel"
    record "deploy $name $sha failed-before-switch"
    die "release $name failed before the switch; nothing changed (current: ${old:-none})" 1
  fi

  say "==> switching current: ${old:-none} -> $name"
  set_link current "$name"
  if [ -n "$old" ]; then set_link previous "$old"; fi

  if restart_and_wait "$name"; then
    record "deploy $name $sha ok"
    say "==> deployed"
    summary "$name" "$old"
    prune
    return 0
  fi

  record "deploy $name $sha unhealthy"
  if [ -z "$old" ]; then
    say "==> $name is not healthy and there is no previous release to go back to" >&2
    exit 3
  fi
  say "==> ROLLING BACK: $name is not healthy; switching current back to $old"
  set_link current "$old"
  set_link previous "$old_previous"
  if restart_and_wait "$old"; then
    record "rollback $old automatic (from $name)"
    say "==> rolled back: $old serves again; the failed release stays in $rel for inspection"
    summary "$old" "$old_previous"
    exit 2
  fi
  record "rollback $old automatic-unhealthy (from $name)"
  say "==> rolled back to $old, but it is not healthy either: act now" >&2
  exit 3
}

target_rollback() {  # target_rollback [RELEASE]: default the previous release
  local want="${1:-}" old
  [ -d "$DEPLOY_PATH/releases" ] || die "no releases under $DEPLOY_PATH"
  lock
  TARGET_PY="${DEPLOY_VENV_FROM:+$DEPLOY_VENV_FROM/bin/python}"; TARGET_PY="${TARGET_PY:-$DEPLOY_PYTHON}"
  old="$(release_of current)"
  if [ -z "$want" ]; then
    want="$(release_of previous)"
    [ -n "$want" ] || die "no previous release recorded; name one (scripts/rollback.sh --list)"
  fi
  want="$(basename "$want")"
  [ -x "$DEPLOY_PATH/releases/$want/.venv/bin/llm-gateway" ] ||
    die "release $want is not installed under $DEPLOY_PATH/releases (scripts/rollback.sh --list)"
  [ "$want" != "$old" ] || die "$want is already current"
  say "==> rolling back: current ${old:-none} -> $want"
  set_link current "$want"
  if [ -n "$old" ]; then set_link previous "$old"; fi
  if restart_and_wait "$want"; then
    record "rollback $want manual (from ${old:-none})"
    say "==> rolled back"
    summary "$want" "$old"
    return 0
  fi
  record "rollback $want manual-unhealthy (from ${old:-none})"
  say "==> $want is current but not healthy: roll forward (scripts/rollback.sh $old) or investigate" >&2
  exit 3
}

target_list() {
  local current previous name marker
  current="$(release_of current)"; previous="$(release_of previous)"
  [ -d "$DEPLOY_PATH/releases" ] || { say "no releases under $DEPLOY_PATH"; return 0; }
  find "$DEPLOY_PATH/releases" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort | while read -r name; do
    marker=""
    [ "$name" = "$current" ] && marker="  <- current"
    [ "$name" = "$previous" ] && marker="  <- previous"
    say "$name$marker"
  done
}

if [ "${1:-}" = "__target" ]; then
  shift
  defaults
  export DEPLOY_PATH  # the restart and status commands see it
  action="$1"; shift
  case "$action" in
    deploy) target_deploy "$@" ;;
    rollback) target_rollback "$@" ;;
    list) target_list ;;
    *) die "unknown target action $action" ;;
  esac
  exit 0
fi

# ------------------------------------------------------------------------------------------------
# Here: arguments, prerequisites, tests, the archive, the transport.
# ------------------------------------------------------------------------------------------------

MODE=deploy SKIP_TESTS=0 ALLOW_DIRTY=0 POSITIONAL=""
need() { [ $# -ge 2 ] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --host) need "$@"; DEPLOY_HOST="$2"; shift ;;
    --user) need "$@"; DEPLOY_USER="$2"; shift ;;
    --ssh-port) need "$@"; DEPLOY_SSH_PORT="$2"; shift ;;
    --ssh-opts) need "$@"; DEPLOY_SSH_OPTS="$2"; shift ;;
    --path) need "$@"; DEPLOY_PATH="$2"; shift ;;
    --python) need "$@"; DEPLOY_PYTHON="$2"; shift ;;
    --config) need "$@"; DEPLOY_CONFIG="$2"; shift ;;
    --env-file) need "$@"; DEPLOY_ENV_FILE="$2"; shift ;;
    --data-dir) need "$@"; DEPLOY_DATA_DIR="$2"; shift ;;
    --migrate-cmd) need "$@"; DEPLOY_MIGRATE_CMD="$2"; shift ;;
    --restart-cmd) need "$@"; DEPLOY_RESTART_CMD="$2"; shift ;;
    --status-cmd) need "$@"; DEPLOY_STATUS_CMD="$2"; shift ;;
    --health-url) need "$@"; DEPLOY_HEALTH_URL="$2"; shift ;;
    --health-timeout) need "$@"; DEPLOY_HEALTH_TIMEOUT="$2"; shift ;;
    --public-url) need "$@"; DEPLOY_PUBLIC_URL="$2"; shift ;;
    --pip-args) need "$@"; DEPLOY_PIP_ARGS="$2"; shift ;;
    --venv-from) need "$@"; DEPLOY_VENV_FROM="$2"; shift ;;
    --keep) need "$@"; DEPLOY_KEEP="$2"; shift ;;
    --skip-tests) SKIP_TESTS=1 ;;
    --allow-dirty) ALLOW_DIRTY=1 ;;
    --rollback) MODE=rollback ;;
    --list) MODE=list ;;
    -h|--help) sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (--help lists them)" ;;
    *) [ -z "$POSITIONAL" ] || die "one commit (or release) only"; POSITIONAL="$1" ;;
  esac
  shift
done
defaults
[ -n "$DEPLOY_HOST" ] || die "no target: --host HOST or DEPLOY_HOST (\"local\" runs the target side here)"
[[ "$DEPLOY_KEEP" =~ ^[0-9]+$ && "$DEPLOY_KEEP" -ge 2 ]] || die "--keep must be a number >= 2"
[[ "$DEPLOY_HEALTH_TIMEOUT" =~ ^[0-9]+$ ]] || die "--health-timeout must be a whole number of seconds"

DEST="${DEPLOY_USER:+$DEPLOY_USER@}$DEPLOY_HOST"
SSH=(ssh -o BatchMode=yes -o ConnectTimeout=10)
if [ -n "$DEPLOY_SSH_PORT" ]; then SSH+=(-p "$DEPLOY_SSH_PORT"); fi
# shellcheck disable=SC2206  # DEPLOY_SSH_OPTS is a list of ssh options
if [ -n "$DEPLOY_SSH_OPTS" ]; then SSH+=($DEPLOY_SSH_OPTS); fi

target_env() {  # the DEPLOY_* settings as `NAME=value` words, quoted for a remote shell
  local name
  for name in "${DEPLOY_VARS[@]}"; do printf '%s=%q ' "$name" "${!name}"; done
  printf 'DEPLOY_BY=%q ' "$(id -un)@$(hostname)"
}

run_target() {  # run_target SCRIPT ACTION ARGS...: the target side, locally or over ssh
  local script="$1"; shift
  if [ "$DEPLOY_HOST" = "local" ]; then
    local assignments=() name
    for name in "${DEPLOY_VARS[@]}"; do assignments+=("$name=${!name}"); done
    env "${assignments[@]}" DEPLOY_BY="$(id -un)@local" bash "$script" __target "$@" </dev/null
  else
    # shellcheck disable=SC2029  # expanded here on purpose: the settings travel as arguments
    "${SSH[@]}" "$DEST" "env $(target_env) bash $(printf '%q' "$script") __target $(printf '%q ' "$@")" </dev/null
  fi
}

if [ "$DEPLOY_HOST" != "local" ]; then
  command -v ssh >/dev/null || die "ssh is not installed"
  "${SSH[@]}" "$DEST" true </dev/null || die "cannot reach $DEST over ssh (BatchMode: keys only)"
fi

if [ "$MODE" = "rollback" ] || [ "$MODE" = "list" ]; then
  if [ "$DEPLOY_HOST" = "local" ]; then
    run_target "$SELF" "$MODE" ${POSITIONAL:+"$POSITIONAL"}
  else
    remote_tmp="$("${SSH[@]}" "$DEST" 'mktemp -d /tmp/llm-gateway-deploy.XXXXXX' </dev/null)"
    "${SSH[@]}" "$DEST" "cat > $remote_tmp/deploy.sh" < "$SELF"
    set +e
    run_target "$remote_tmp/deploy.sh" "$MODE" ${POSITIONAL:+"$POSITIONAL"}
    status=$?
    set -e
    "${SSH[@]}" "$DEST" "rm -rf $remote_tmp" </dev/null || true
    exit "$status"
  fi
  exit 0
fi

# --- deploy: prerequisites ---
command -v git >/dev/null || die "git is not installed"
git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1 || die "$ROOT is not a git checkout"
COMMIT="${POSITIONAL:-HEAD}"
SHA="$(git -C "$ROOT" rev-parse --verify --quiet "$COMMIT^{commit}")" || die "no such commit: $COMMIT"
if [ "$ALLOW_DIRTY" = 0 ] && [ -n "$(git -C "$ROOT" status --porcelain)" ]; then
  die "the working tree has uncommitted changes (commit them, or --allow-dirty: only $COMMIT is deployed)"
fi
NAME="$(date -u +%Y%m%dT%H%M%SZ)-${SHA:0:12}"
say "==> deploying $COMMIT ($SHA) to ${DEST}:$DEPLOY_PATH as $NAME"

if [ "$SKIP_TESTS" = 0 ]; then
  say "==> running the tests (scripts/test; --skip-tests skips them)"
  (cd "$ROOT" && scripts/test) || die "the tests failed: not deploying"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/llm-gateway-deploy.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
git -C "$ROOT" archive --format=tar.gz -o "$WORK/release.tar.gz" "$SHA"
say "==> packed $(du -h "$WORK/release.tar.gz" | cut -f1) with git archive"

set +e
if [ "$DEPLOY_HOST" = "local" ]; then
  cp "$SELF" "$WORK/deploy.sh"
  run_target "$WORK/deploy.sh" deploy "$NAME" "$SHA" "$WORK/release.tar.gz"
  status=$?
else
  remote_tmp="$("${SSH[@]}" "$DEST" 'mktemp -d /tmp/llm-gateway-deploy.XXXXXX' </dev/null)" ||
    die "cannot create a temporary directory on $DEST"
  if ! "${SSH[@]}" "$DEST" "cat > $remote_tmp/release.tar.gz" < "$WORK/release.tar.gz" ||
     ! "${SSH[@]}" "$DEST" "cat > $remote_tmp/deploy.sh" < "$SELF"; then
    die "copying the release to $DEST failed"
  fi
  run_target "$remote_tmp/deploy.sh" deploy "$NAME" "$SHA" "$remote_tmp/release.tar.gz"
  status=$?
  "${SSH[@]}" "$DEST" "rm -rf $remote_tmp" </dev/null || true
fi
set -e
case "$status" in
  0) say "==> done: $NAME is live on $DEST" ;;
  1) say "==> deploy failed before the switch: nothing changed on $DEST" >&2 ;;
  2) say "==> deploy failed: rolled back automatically, the previous release serves" >&2 ;;
  *) say "==> deploy failed and the rollback did not bring a healthy release back: act now" >&2 ;;
esac
exit "$status"
