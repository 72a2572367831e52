#!/usr/bin/env bash
# One-command set-up for Liqscope from a checkout (Debian/Ubuntu, Python >= 3.11).
#   packaging/dev.sh run    create .venv, install, launch the app on the bundled demo
#   packaging/dev.sh test   create .venv, install test deps, run every test (offscreen)
# Extra arguments are passed on to `liqscope` (run) or `pytest` (test).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}; shift || true
case "$mode" in run|test) ;; *) echo "usage: packaging/dev.sh run|test [args...]" >&2; exit 2;; esac

pick_python() {
  for py in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$py" ] && command -v "$py" >/dev/null 2>&1 || continue
    if "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then echo "$py"; return; fi
  done
  echo "liqscope: Python >= 3.11 is required (apt-get install python3 python3-venv)" >&2; exit 1
}

PY=$(pick_python)
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv || { echo "liqscope: cannot create a virtual environment: apt-get install python3-venv" >&2; exit 1; }
fi
extra=""; [ "$mode" = test ] && extra="[test]"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extra}"

# Qt's shared libraries come from Debian: find what the Qt platform plugins lack.
. packaging/debian-deps.sh  # deb_for, apt_install
missing_libs() {
  local qt; qt=$(.venv/bin/python -c 'import PySide6, os; print(os.path.join(os.path.dirname(PySide6.__file__), "Qt"))')
  local files=("$qt"/lib/libQt6Gui.so.* "$qt"/lib/libQt6Widgets.so.* "$qt"/plugins/platforms/libqoffscreen.so)
  [ "$mode" = run ] && files+=("$qt"/plugins/platforms/libqxcb.so "$qt"/lib/libQt6XcbQpa.so.*)
  for f in "${files[@]}"; do [ -e "$f" ] && ldd "$f" 2>/dev/null | awk '/not found/{print $1}'; done | sort -u
}
pkgs=$(for so in $(missing_libs); do deb_for "$so"; done | sort -u | tr '\n' ' ')
if [ -n "${pkgs// }" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    known=""; for p in $pkgs; do case $p in \?*) ;; *) known+="$p ";; esac; done  # ?soname: no package known
    if [ -n "$known" ]; then
      echo "liqscope: installing Debian libraries Qt needs: $known" >&2
      apt_install $known || exit 1
    fi
    pkgs=$(for so in $(missing_libs); do deb_for "$so"; done | sort -u | tr '\n' ' ')
  fi
  if [ -n "${pkgs// }" ]; then
    echo "liqscope: missing Debian libraries for Qt: ${pkgs}(run: sudo apt-get install ${pkgs//\?/})" >&2
    exit 1
  fi
fi

if [ "$mode" = test ]; then
  export QT_QPA_PLATFORM=offscreen
  exec .venv/bin/python -m pytest "$@"
fi
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  out=${LIQSCOPE_SCREENSHOT:-liqscope-demo.png}
  echo "liqscope: no display found; rendering the window to $out instead (set DISPLAY to open it)" >&2
  QT_QPA_PLATFORM=offscreen exec .venv/bin/liqscope --demo --screenshot "$out" "$@"
fi
exec .venv/bin/liqscope --demo "$@"
