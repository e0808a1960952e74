# The apt part of fetching a Debian source package (sourced by
# scripts/fetch-qemu.sh and scripts/fetch-libvirt.sh; they define die, say
# and RELEASE).  apt's deb-src indexes live in a private state directory
# under the cache dir (nothing is written to /etc); their URIs are copied
# from the machine's own configured Debian sources
# (scripts/debian-sources.py).

# apt_state DIR: a private apt state in DIR; sets state and APT (the options
# every apt-get and apt-cache call takes)
apt_state() {
    state=$1
    mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/etc/parts.d"
    APT=(-o "Dir::Etc::SourceList=$state/etc/sources.list"
         -o "Dir::Etc::SourceParts=$state/etc/parts.d"
         -o "Dir::State=$state" -o "Dir::State::Lists=$state/lists"
         -o "Dir::Cache=$state/cache" -o "Dir::State::status=/dev/null"
         -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1")
}

# The deb-src entries of $RELEASE, its -updates and -security.
write_sources() {
    local here uri signed sec sec_uri sec_signed
    here=$(dirname "${BASH_SOURCE[0]}")
    read -r _ uri signed < <(python3 "$here/debian-sources.py" | grep '^main ') ||
        die "no Debian archive in this machine's apt sources; add one (deb822 or sources.list)"
    sec=$(python3 "$here/debian-sources.py" | grep '^security ' || true)
    {
        echo "deb-src ${signed:+[signed-by=$signed]} $uri $RELEASE main"
        echo "deb-src ${signed:+[signed-by=$signed]} $uri $RELEASE-updates main"
        if [ -n "$sec" ]; then
            read -r _ sec_uri sec_signed <<<"$sec"
            echo "deb-src ${sec_signed:+[signed-by=$sec_signed]} $sec_uri $RELEASE-security main"
        fi
    } | sed 's/\[signed-by=-\] //' > "$state/etc/sources.list"
}

# Update the private deb-src indexes; on failure print apt's log, return 1.
apt_update() {
    write_sources
    say "updating deb-src indexes for $RELEASE (private state in $state)"
    apt-get "${APT[@]}" update -q >"$state/update.log" 2>&1 && return 0
    cat "$state/update.log" >&2
    return 1
}
