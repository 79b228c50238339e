#!/usr/bin/env bash
# Screenshots of every view: the real release binary in a real terminal (tmux, 120x40) on the
# demo fleet at a fixed --now, each screen captured with its colours and rendered to PNG.
# Needs tmux and Python 3; installs Pillow into .venv. Run from anywhere: screenshots/make.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --no-default-features --bin fleetscope
bin="$(realpath "${CARGO_TARGET_DIR:-target}")/release/fleetscope"
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
     $bin --demo --now 2026-11-01T00:00:00Z"

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

# Waits until the screen shows `$1` (a fixed string), for at most 20 s.
until_shown() {
    for _ in $(seq 200); do
        tmux -L "$socket" capture-pane -p -t main | grep -qF "$1" && return 0
        sleep 0.1
    done
    echo "never showed: $1" >&2
    return 1
}

shot overview
keys 2
shot images
keys 3 /
text "cloud:aws verdict:outdated age:>20"
keys Enter Space Space Space
shot instances
# The selected instance's whole story: verdict, reasons, image, addresses, exposure, tags.
keys i
shot detail
keys Escape
# A filter that does not parse says why, and the rows stay those of the last good filter
# (here `verdict:outdat`, a prefix of outdated).
keys /
text " verdict:outdatd"
shot filter-error
keys Escape r
# Lineages folded (Z) so the groups section shows: template drift and version skew.
keys 4 Z
until_shown "Groups"
shot drift
# Queue everything not current on the most lagging lineage, then look at the queue.
keys Z g R
tmux -L "$socket" capture-pane -p -t main | grep -q "y/N" && keys y
# And two whose lineage has no golden image: they are queued, blocked, and say why.
keys 3 / C-u
text "verdict:unknown"
keys Enter Space Space r 5 :
text "sort step desc"
keys Enter g
shot queue
# The apply confirmation shows the plan: waves, strategies, what is left queued and why.
keys A
until_shown "Apply the queue"
shot apply
phrase=$(tmux -L "$socket" capture-pane -p -t main | sed -n 's/.*Type \(.*\) and Enter to go on.*/\1/p' | head -1)
text "$phrase"
keys Enter
# The rollout: the demo fails one replacement in twelve, so it stops after its first wave;
# how it ended stays above the list, and /failed shows the entry that failed and why.
until_shown "last apply:"
keys /
text "failed"
keys Enter
shot rollout
keys 3 '?'
shot help
keys Escape q
