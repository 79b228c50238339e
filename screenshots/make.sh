#!/usr/bin/env bash
# Screenshots of every view: the real release binary in a real terminal (tmux, 120x40) on the
# demo fleet at a fixed --now, each screen captured with its colours and rendered to PNG.
# Needs tmux and Python 3; installs Pillow into .venv. Run from anywhere: screenshots/make.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --no-default-features --bin fleetscope
venv=.venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import PIL" 2>/dev/null \
    || "$venv/bin/pip" install --quiet --disable-pip-version-check pillow

work=$(mktemp -d)
socket="fleetscope-screenshots-$$"
trap 'tmux -L "$socket" kill-server 2>/dev/null || true; rm -rf "$work"' EXIT
echo "version = 1" > "$work/config.toml"
tmux -L "$socket" new-session -d -s main -x 120 -y 40 \
    "env FLEETSCOPE_DATA_DIR=$work/data FLEETSCOPE_CONFIG=$work/config.toml TERM=xterm-256color \
     target/release/fleetscope --demo --now 2026-11-01T00:00:00Z"

keys() { for key in "$@"; do tmux -L "$socket" send-keys -t main "$key"; sleep 0.15; done; }
text() { tmux -L "$socket" send-keys -t main -l "$1"; sleep 0.3; }
shot() {
    sleep 0.5
    tmux -L "$socket" capture-pane -e -p -t main > "$work/$1.ansi"
    "$venv/bin/python" screenshots/render.py "$work/$1.ansi" "screenshots/$1.png"
    echo "screenshots/$1.png"
}

for _ in $(seq 100); do
    screen=$(tmux -L "$socket" capture-pane -p -t main)
    if grep -q "Fleet by verdict" <<<"$screen" && ! grep -q collecting <<<"$screen"; then break; fi
    sleep 0.1
done

shot overview
keys 2
shot images
keys 3 /
text "cloud:aws verdict:outdated age:>20"
keys Enter Space Space Space
shot instances
keys r 4 j j
shot drift
keys R 5
shot queue
keys 3 '?'
shot help
keys Escape q
