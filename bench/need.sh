# Sourced by the bench scripts: `need COMMAND PACKAGE` installs PACKAGE with apt-get when
# COMMAND is missing (as root, on Debian), and stops the script with the package to install
# when it still is.
need() {
  command -v "$1" >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && apt-get install -y -qq "$2"; } >/dev/null 2>&1 || true
  fi
  command -v "$1" >/dev/null || { echo "$1 is missing: apt-get install $2" >&2; exit 1; }
}
