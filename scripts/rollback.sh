#!/usr/bin/env bash
# Roll llm-gateway back on demand: switch `current` to the previous release (or the one named),
# restart the services and wait for health. It reads the same options and DEPLOY_* variables as
# scripts/deploy.sh (host, path, restart/status commands, health URL; see `scripts/deploy.sh --help`).
#
# Usage: scripts/rollback.sh [options]              back to `previous` (what was current before)
#        scripts/rollback.sh [options] RELEASE      to releases/RELEASE (a name from --list)
#        scripts/rollback.sh [options] --list       the releases on the target, current and previous marked
#
# Rolling back twice goes forward again: the release you left becomes `previous`.
# Exit status: 0 rolled back and healthy; 1 refused (no such release, already current, a deploy is
# running); 3 switched but the release is not healthy.
set -euo pipefail
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/deploy.sh" --rollback "$@"
