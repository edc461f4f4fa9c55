#!/usr/bin/env bash
# A Debian trixie root (Python 3.13, glibc 2.41) for the TFX 1.21 stack on machines whose own glibc is older
# (TFX 1.21's ml-metadata and TFDV wheels need glibc >= 2.39; Debian 12 has 2.36). Needs root (debootstrap, chroot).
#
#   tools/py313-root.sh build          # make the root once (about a minute); a second call sees it and returns
#   tools/py313-root.sh run CMD ...    # run CMD in this repository inside the root (at the same path)
#   tools/py313-root.sh clean          # unmount anything left mounted and delete the root
#
# `run` mounts /proc, /sys, /dev, the repository and the host's pip cache inside the root and unmounts all of them
# when the last overlapping run ends, fails or is interrupted; with IMDB_ARCHIVE set, also that file's folder
# (read-only, same path).
# Environment: PY313_ROOT (default: .stacks/py313-root in this repository).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${PY313_ROOT:-$REPO/.stacks/py313-root}
SUITE=trixie
PACKAGES=python3,python3-venv,python3-pip,python3-dev,g++,make,git,ca-certificates,kubectl
STAMP=$ROOT/.bert-imdb-root-ready
PIP_CACHE=${PIP_CACHE_DIR:-$HOME/.cache/pip}
MOUNTED=()

die() { echo "py313-root: $*" >&2; exit 1; }

build() {
    [ -f "$STAMP" ] && { echo "py313-root: $ROOT is ready"; return 0; }
    [ "$(id -u)" = 0 ] || die "building the root needs root (debootstrap, chroot)"
    if ! command -v debootstrap >/dev/null; then
        echo "py313-root: installing debootstrap"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    fi
    rm -rf "$ROOT" && mkdir -p "$ROOT"
    echo "py313-root: debootstrap $SUITE into $ROOT"
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOT" >"$ROOT.debootstrap.log" 2>&1 \
        || { tail -20 "$ROOT.debootstrap.log" >&2; die "debootstrap failed (log: $ROOT.debootstrap.log)"; }
    # The host's resolver and CA bundle: the root's own bundle fails TLS to the package registries here.
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
    cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
    # The host's pip settings (index mirrors, CA bundle), where it has them.
    for conf in /etc/pip.conf /etc/xdg/pip/pip.conf /etc/xdg/pip/constraints.txt; do
        [ -f "$conf" ] && mkdir -p "$ROOT$(dirname "$conf")" && cp "$conf" "$ROOT$conf"
    done
    chroot "$ROOT" python3 --version
    touch "$STAMP"
}

unmount_all() {
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        umount -R "${MOUNTED[$i]}" 2>/dev/null || umount -l "${MOUNTED[$i]}" 2>/dev/null || true
    done
    MOUNTED=()
}

mount_in_root() {  # mount_in_root TARGET mount-args...: once, however many runs share the root
    local target=$1; shift
    mkdir -p "$target"
    findmnt -rn --mountpoint "$target" >/dev/null 2>&1 || mount "$@" "$target"
    MOUNTED+=("$target")
}

# Runs may overlap (two terminals, parallel test jobs): each registers its pid under $USERS; the first mounts, the
# last one out unmounts, all under one lock. A run killed with SIGKILL leaves its pid behind; dead pids are pruned.
USERS=$ROOT.users
LOCK=$ROOT.lock

live_users() {
    local f
    for f in "$USERS"/*; do
        [ -e "$f" ] || continue
        if kill -0 "$(basename "$f")" 2>/dev/null; then echo "$f"; else rm -f "$f"; fi
    done
}

mount_all() {
    mount_in_root "$ROOT/proc" -t proc proc
    mount_in_root "$ROOT/sys" -t sysfs sysfs
    if ! findmnt -rn --mountpoint "$ROOT/dev" >/dev/null 2>&1; then
        mount_in_root "$ROOT/dev" --rbind /dev
        mount --make-rslave "$ROOT/dev"
    else
        MOUNTED+=("$ROOT/dev")
    fi
    # The checkout at its own path: paths that one stack records (ML Metadata, a pipeline root, the editable
    # install) then mean the same file on both stacks, so both can share pipelines/<preset>/.
    mount_in_root "$ROOT$REPO" --bind "$REPO"
    mkdir -p "$PIP_CACHE"
    mount_in_root "$ROOT/root/.cache/pip" --bind "$PIP_CACHE"
    # The IMDB data a command names (make demo-py313), at the same path inside the root, read-only.
    if [ -n "${IMDB_DATA:-}" ] && ! findmnt -rn --mountpoint "$ROOT$IMDB_DATA" >/dev/null 2>&1; then
        mount_in_root "$ROOT$IMDB_DATA" --bind "$IMDB_DATA"
        mount -o remount,bind,ro "$ROOT$IMDB_DATA"
    elif [ -n "${IMDB_DATA:-}" ]; then
        MOUNTED+=("$ROOT$IMDB_DATA")
    fi
}

leave() {  # unregister; the last run out unmounts everything under the root
    exec 9>"$LOCK"
    flock 9
    rm -f "$USERS/$$"
    if [ -z "$(live_users)" ]; then
        MOUNTED=()
        local target
        for target in $(mounts_under_root); do MOUNTED+=("$target"); done
        unmount_all
    fi
    flock -u 9
}

run() {
    [ -f "$STAMP" ] || die "no root at $ROOT: run '$0 build' first"
    [ "$#" -gt 0 ] || die "usage: $0 run CMD ..."
    IMDB_DATA=""
    local passed=(HOME=/root PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 CI="${CI:-}")
    if [ -n "${IMDB_ARCHIVE:-}" ]; then
        IMDB_DATA=$(cd "$(dirname "$IMDB_ARCHIVE")" && pwd)
        passed+=(IMDB_ARCHIVE="$IMDB_DATA/$(basename "$IMDB_ARCHIVE")")
    fi
    trap leave EXIT INT TERM
    exec 9>"$LOCK"
    flock 9
    mkdir -p "$USERS"
    touch "$USERS/$$"
    mount_all
    flock -u 9
    local status=0
    chroot "$ROOT" env -i "${passed[@]}" bash -c 'cd "$0" && exec "$@"' "$REPO" "$@" || status=$?
    trap - EXIT INT TERM
    leave
    return "$status"
}

mounts_under_root() { findmnt -rn -o TARGET | grep -F "$ROOT/" | sort -r || true; }

clean() {
    local target
    for target in $(mounts_under_root); do umount -R "$target" 2>/dev/null || umount -l "$target" || true; done
    [ -z "$(mounts_under_root)" ] || die "could not unmount: $(mounts_under_root | tr '\n' ' ')"
    [ -d "$ROOT" ] && rm -rf --one-file-system "$ROOT"
    rm -rf "$ROOT.debootstrap.log" "$USERS" "$LOCK"
}

case "${1:-}" in
    build) build ;;
    run) shift; run "$@" ;;
    clean) clean ;;
    *) die "usage: $0 build | run CMD ... | clean" ;;
esac
