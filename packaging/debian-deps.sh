# Debian libraries for Qt, sourced by packaging/dev.sh (bash). Defines:
#   deb_for SONAME       the Debian package that ships SONAME ("?SONAME" if not known)
#   apt_install PKG...   apt-get update + install, waiting for another apt/dpkg (bounded);
#                        on failure prints one line naming the command to run and returns 1
# gui/display.py holds the same soname -> package table (tests/gui/test_display.py compares them).

deb_for() {  # soname -> Debian package (bookworm names; close enough on Ubuntu)
  case "$1" in
    libEGL.so.1) echo libegl1;; libGL.so.1|libGLX.so.0|libOpenGL.so.0) echo libgl1;;
    libfontconfig.so.1) echo libfontconfig1;; libfreetype.so.6) echo libfreetype6;;
    libxkbcommon.so.0) echo libxkbcommon0;; libxkbcommon-x11.so.0) echo libxkbcommon-x11-0;;
    libglib-2.0.so.0|libgthread-2.0.so.0) echo libglib2.0-0;; libdbus-1.so.3) echo libdbus-1-3;;
    libxcb-cursor.so.0) echo libxcb-cursor0;; libxcb-icccm.so.4) echo libxcb-icccm4;;
    libxcb-keysyms.so.1) echo libxcb-keysyms1;; libxcb-shape.so.0) echo libxcb-shape0;;
    libxcb-image.so.0) echo libxcb-image0;; libxcb-render-util.so.0) echo libxcb-render-util0;;
    libxcb-randr.so.0) echo libxcb-randr0;; libxcb-xinerama.so.0) echo libxcb-xinerama0;;
    libxcb-xkb.so.1) echo libxcb-xkb1;; libxcb-sync.so.1) echo libxcb-sync1;;
    libxcb-xfixes.so.0) echo libxcb-xfixes0;; libxcb-shm.so.0) echo libxcb-shm0;;
    libxcb-render.so.0) echo libxcb-render0;; libxcb-util.so.1) echo libxcb-util1;;
    libX11-xcb.so.1) echo libx11-xcb1;; libX11.so.6) echo libx11-6;; libxcb.so.1) echo libxcb1;;
    libSM.so.6) echo libsm6;; libICE.so.6) echo libice6;;
    *) echo "?$1";;
  esac
}

# How long apt_install waits in all for another apt/dpkg process to let go of its locks.
LIQSCOPE_APT_LOCK_TIMEOUT=${LIQSCOPE_APT_LOCK_TIMEOUT:-300}

# _apt_get LOG ARGS...: apt-get ARGS, its output in LOG. If another process holds apt's or
# dpkg's lock, say so (once per apt_install) and run it again, waiting for the lock until
# the deadline with apt's own DPkg::Lock::Timeout.
_apt_get() {
  local log=$1; shift
  DEBIAN_FRONTEND=noninteractive apt-get -q "$@" >"$log" 2>&1 && return 0
  grep -qE 'Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock' "$log" || return 1
  [ -n "$_apt_waited" ] || echo "liqscope: waiting for another apt/dpkg process to finish…" >&2
  _apt_waited=1
  local left=$(( _apt_deadline - $(date +%s) )); [ "$left" -gt 0 ] || left=0
  DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout="$left" "$@" >"$log" 2>&1
}

apt_install() {
  _apt_waited=""
  _apt_deadline=$(( $(date +%s) + LIQSCOPE_APT_LOCK_TIMEOUT ))
  local log status=0
  log=$(mktemp)
  if ! _apt_get "$log" update || ! _apt_get "$log" install -y "$@"; then
    # apt's first error line, in ours: one line in all, never apt's raw output alone
    local why; why=$(grep -E '^E:' "$log" | head -n 1 | sed 's/^E: //') || true
    [ -n "$why" ] || why=$(grep -v '^[[:space:]]*$' "$log" | tail -n 1) || true
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo "
    echo "liqscope: apt-get failed${why:+ ($why)}; install the libraries Qt needs with: ${sudo}apt-get install $*" >&2
    status=1
  fi
  rm -f "$log"
  return "$status"
}
