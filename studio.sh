#!/usr/bin/env bash
# One entry point for a fresh machine: builds (or reuses) the virtual environment, then
#   ./studio.sh [app flags]      runs the Gradio app (http://127.0.0.1:7860)
#   ./studio.sh test [pytest args]  runs ruff and the test suite
#   ./studio.sh cli CONTENT STYLE -o OUT [flags]  runs the command-line tool
# The venv lives outside the checkout, keyed on the hash of requirements.txt and requirements-dev.txt (the app's
# needs plus the test tools), so a changed requirements file gets a new one and an unchanged one is reused
# (STUDIO_VENV overrides the path). A Hugging Face Space installs requirements.txt alone.
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
HASH=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-12)
VENV=${STUDIO_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/style-studio/venv-$HASH}

if [ ! -x "$VENV/bin/python" ] || [ ! -f "$VENV/.complete" ]; then
  echo "setting up $VENV (first run: a few minutes)" >&2
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --no-input -r requirements-dev.txt
  touch "$VENV/.complete"
fi
export PATH="$VENV/bin:$PATH"

case "${1:-app}" in
  test)
    shift || true
    python -m ruff check .
    exec python -m pytest -q "$@"
    ;;
  cli)
    shift
    exec python -m style_core "$@"
    ;;
  app)
    shift || true
    exec python app.py "$@"
    ;;
  *)
    exec python app.py "$@"
    ;;
esac
