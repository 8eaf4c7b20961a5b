# Sourced by the bench scripts: installs what a fresh Debian machine lacks.

# apt_install PKG... : installs Debian packages with apt-get, through sudo unless root.
apt_install() {
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq "$@"
}
