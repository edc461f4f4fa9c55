#!/usr/bin/env bash
# A Debian trixie root (Python 3.13, glibc 2.41) for the TFX 1.21 stack on machines whose own glibc is older
# (TFX 1.21's ml-metadata and TFDV wheels need glibc >= 2.39; Debian 12 has 2.36). Needs root (debootstrap, chroot).
#
#   tools/py313-root.sh build          # make the root once (about a minute); a second call sees it and returns
#   tools/py313-root.sh run CMD ...    # run CMD in this repository inside the root (at the same path)
#   tools/py313-root.sh clean          # unmount anything left mounted and delete the root
#
# `run` mounts /proc, /sys, /dev, the repository and the host's pip cache inside the root and unmounts all of them
# when CMD ends, fails or is interrupted; with IMDB_ARCHIVE set, also that file's folder (read-only, same path).
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

mount_in_root() {  # mount_in_root TARGET mount-args...
    local target=$1; shift
    mkdir -p "$target"
    mount "$@" "$target"
    MOUNTED+=("$target")
}

run() {
    [ -f "$STAMP" ] || die "no root at $ROOT: run '$0 build' first"
    [ "$#" -gt 0 ] || die "usage: $0 run CMD ..."
    trap unmount_all EXIT INT TERM
    mount_in_root "$ROOT/proc" -t proc proc
    mount_in_root "$ROOT/sys" -t sysfs sysfs
    mount_in_root "$ROOT/dev" --rbind /dev
    mount --make-rslave "$ROOT/dev"
    # The checkout at its own path: paths that one stack records (ML Metadata, a pipeline root, the editable
    # install) then mean the same file on both stacks, so both can share pipelines/<preset>/.
    mount_in_root "$ROOT$REPO" --bind "$REPO"
    mkdir -p "$PIP_CACHE"
    mount_in_root "$ROOT/root/.cache/pip" --bind "$PIP_CACHE"
    local passed=(HOME=/root PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 CI="${CI:-}")
    # The IMDB data a command names (make demo-py313), at the same path inside the root, read-only.
    if [ -n "${IMDB_ARCHIVE:-}" ]; then
        local data
        data=$(cd "$(dirname "$IMDB_ARCHIVE")" && pwd)
        mount_in_root "$ROOT$data" --bind "$data"
        mount -o remount,bind,ro "$ROOT$data"
        passed+=(IMDB_ARCHIVE="$data/$(basename "$IMDB_ARCHIVE")")
    fi
    local status=0
    chroot "$ROOT" env -i "${passed[@]}" bash -c 'cd "$0" && exec "$@"' "$REPO" "$@" || status=$?
    unmount_all
    trap - EXIT INT TERM
    return "$status"
}

mounts_under_root() { findmnt -rn -o TARGET | grep -F "$ROOT/" | sort -r || true; }

clean() {
    local target
    for target in $(mounts_under_root); do umount -R "$target" 2>/dev/null || umount -l "$target" || true; done
    [ -z "$(mounts_under_root)" ] || die "could not unmount: $(mounts_under_root | tr '\n' ' ')"
    [ -d "$ROOT" ] && rm -rf --one-file-system "$ROOT"
    rm -f "$ROOT.debootstrap.log"
}

case "${1:-}" in
    build) build ;;
    run) shift; run "$@" ;;
    clean) clean ;;
    *) die "usage: $0 build | run CMD ... | clean" ;;
esac
