#!/usr/bin/env bash
# Install the Debian 12 packages Chaton needs. Run as root; safe to run again.
#
#   scripts/install-debian.sh           what `make run` needs: slapd and its tools,
#                                       the build dependencies of python-ldap, gettext
#   scripts/install-debian.sh --test    also the servers and browser the tests drive:
#                                       PostgreSQL, sshd and ssh, Chromium
#
# Chaton runs its own slapd and (in tests) its own PostgreSQL from its data
# directory, on loopback. Debian's system services for them are not wanted: a
# policy-rc.d that answers 101 ("action forbidden") keeps the packages'
# maintainer scripts from starting them, and the services are then disabled.
set -euo pipefail

runtime_packages=(
    slapd ldap-utils                                         # the managed directory server
    libldap2-dev libsasl2-dev gcc python3-dev python3-venv   # to build python-ldap in the venv
    gettext                                                  # compilemessages
    restic postgresql                                        # backups: restic, pg_dump, scratch servers for drills
    docker.io caddy                                          # services: the engine, the TLS reverse proxy
    busybox-static                                           # the images Chaton builds itself (catalogue "homepage"), test images
    libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0     # WeasyPrint: the activity report as PDF
    fonts-dejavu-core                                        # the report's font
)
test_packages=(
    openssh-server openssh-client     # AuthorizedKeysCommand tests against a real sshd
    chromium                          # browser tests (Playwright)
    pebble                            # the ACME server the proxy tests get certificates from
    faketime                          # sshd runs chaton ssh-keys at a chosen instant (expiry tests)
    knot                              # the DNS server the probes and DNS adapter tests ask (chaton/testing/dns.py)
    postfix opendkim opendkim-tools   # the mail tests' MTA and DKIM signer (chaton/testing/mailservers.py)
    poppler-utils                     # pdftotext reads the activity report's PDF back
)
# The packages whose system services must not run: Chaton starts its own servers.
# Docker's own service is wanted where systemd runs (the local engine is the embedded
# default host): the policy above kept it from starting, so it is started at the end.
# Without systemd, `chaton serve` runs a dockerd of its own ([services] docker_managed).
declare -A system_services=([slapd]=slapd [postgresql]=postgresql [caddy]=caddy [knot]=knot
                           [postfix]=postfix [opendkim]=opendkim)
# Package lists older than this are refreshed before installing.
maximum_list_age_seconds=$((24 * 60 * 60))
policy_file=/usr/sbin/policy-rc.d
policy_backup=""

usage() {
    echo "usage: $0 [--test]" >&2
    exit 2
}

want_test=false
case "$#:${1:-}" in
    0:) ;;
    1:--test) want_test=true ;;
    *) usage ;;
esac

if [[ $(id -u) -ne 0 ]]; then
    echo "$0: run as root (it calls apt-get)" >&2
    exit 1
fi

packages=("${runtime_packages[@]}")
if $want_test; then
    packages+=("${test_packages[@]}")
fi

is_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]
}

has_candidate() {
    # "Candidate: (none)" or no output at all: the lists do not know the package.
    local candidate
    candidate=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
    [[ -n $candidate && $candidate != "(none)" ]]
}

lists_are_fresh() {
    local newest
    newest=$(find /var/lib/apt/lists -maxdepth 1 -name '*Release' -printf '%T@\n' 2>/dev/null \
        | sort -n | tail -n 1)
    [[ -n $newest ]] && (($(date +%s) - ${newest%.*} < maximum_list_age_seconds))
}

missing=()
for package in "${packages[@]}"; do
    is_installed "$package" || missing+=("$package")
done

if ((${#missing[@]} == 0)); then
    echo "All ${#packages[@]} packages are already installed."
    exit 0
fi
echo "To install: ${missing[*]}"

needs_update=false
lists_are_fresh || needs_update=true
for package in "${missing[@]}"; do
    has_candidate "$package" || needs_update=true
done
if $needs_update; then
    apt-get update
fi

policy_installed=false
restore_policy() {
    # Put back whatever policy-rc.d was there before (Docker images ship one);
    # once only, so that a second call never removes the restored file.
    $policy_installed || return 0
    rm -f "$policy_file"
    if [[ -n $policy_backup ]]; then
        mv "$policy_backup" "$policy_file"
    fi
    policy_installed=false
}

if [[ -e $policy_file ]]; then
    policy_backup=$(mktemp "${policy_file}.chaton-backup.XXXXXX")
    cp -p "$policy_file" "$policy_backup"
fi
trap restore_policy EXIT
policy_installed=true
printf '#!/bin/sh\n# Written by Chaton install-debian.sh while it installs: start no service.\nexit 101\n' \
    >"$policy_file"
chmod 0755 "$policy_file"

# Postfix asks what kind of mail system this is: none, Chaton's tests run their own instance.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
DEBIAN_FRONTEND=noninteractive apt-get install --yes --no-install-recommends "${missing[@]}"

restore_policy
trap - EXIT

# The postinst scripts still enable the units for the next boot, and a service
# may have been started some other way: stop and disable the ones we installed.
for package in "${missing[@]}"; do
    service=${system_services[$package]:-}
    [[ -n $service ]] || continue
    if [[ -d /run/systemd/system ]]; then
        systemctl stop "$service" || true
        systemctl disable --quiet "$service"
    else
        # No systemd (a container): the SysV script and its boot links.
        if service "$service" status >/dev/null 2>&1; then
            service "$service" stop
        fi
        update-rc.d "$service" disable >/dev/null 2>&1 || true
        systemctl disable --quiet "$service" 2>/dev/null || true
    fi
    echo "Disabled Debian's $service service: Chaton runs its own."
done

# The local Docker engine answers after `make run`: through systemd where it runs.
if [[ -d /run/systemd/system ]] && is_installed docker.io; then
    systemctl enable --now --quiet docker.service \
        || echo "$0: warning: Docker's service did not start (systemctl status docker)" >&2
fi
