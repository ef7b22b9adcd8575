#!/usr/bin/env bash
# Developer tool (not part of `make check`): prove that a repo builds and passes
# its checks on a fresh Debian 12 machine.
#
#   scripts/fresh-root-check.sh [options] [REPO]
#
# 1. Creates, if absent, a pristine Debian 12 minbase root at $BASE with
#    debootstrap --variant=minbase --include=git,make,ca-certificates bookworm,
#    using the Debian mirror configured in this machine's apt sources.
# 2. For each run, stacks a throwaway overlay (copy if overlayfs is unavailable)
#    on $BASE, so $BASE stays fresh; copies /etc/resolv.conf and the host's apt
#    sources in; mounts /proc, /sys, /dev, /dev/pts.
# 3. git clones REPO (default: the repo holding this script) at HEAD into
#    /root/src and runs `make check` there as root with CI=true via chroot.
# Mounts are torn down and the run directory removed on exit.
#
# Options:
#   --base DIR     base root (default $FRESH_ROOT_BASE or /work/fresh-root-base)
#   --prepare      only create the base and smoke-test it (apt-get update); no clone
#   --cmd CMD      run CMD (bash -c, in /root/src) instead of `make check`
#   --dirty        also copy uncommitted and untracked (not ignored) files of REPO
#   --keep         keep the run directory (upper layer) for inspection
# Environment: MIRROR overrides the mirror read from the apt sources.
set -euo pipefail

BASE=${FRESH_ROOT_BASE:-/work/fresh-root-base}
SUITE=bookworm
prepare=0 dirty=0 keep=0
cmd='make check'
repo=

while (($#)); do
    case $1 in
        --base) BASE=$2; shift 2 ;;
        --prepare) prepare=1; shift ;;
        --cmd) cmd=$2; shift 2 ;;
        --dirty) dirty=1; shift ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown option: $1" >&2; exit 2 ;;
        *) repo=$1; shift ;;
    esac
done

log() { printf 'fresh-root: %s\n' "$*"; }
die() { printf 'fresh-root: ERROR: %s\n' "$*" >&2; exit 1; }

((EUID == 0)) || die "must run as root (debootstrap, mount, chroot)"
BASE=$(realpath -m "$BASE")

# First Debian mirror serving $SUITE in this machine's apt sources (one-line
# .list format and deb822 .sources format).
find_mirror() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        awk -v suite="$SUITE" '
            $1 == "deb" {
                i = 2
                if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) == suite || $(i + 1) == suite "/") { print $i; exit }
            }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        awk -v suite="$SUITE" '
            BEGIN { RS = ""; FS = "\n" }
            {
                uris = ""; suites = ""; types = ""; enabled = 1
                for (i = 1; i <= NF; i++) {
                    line = $i
                    if (line ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", line); uris = line }
                    else if (line ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", line); suites = " " line " " }
                    else if (line ~ /^Types:/) { sub(/^Types:[ \t]*/, "", line); types = " " line " " }
                    else if (line ~ /^Enabled:[ \t]*[Nn]o/) enabled = 0
                }
                if (enabled && types ~ / deb / && suites ~ (" " suite " ")) {
                    split(uris, u, /[ \t]+/); print u[1]; exit
                }
            }' "$f"
    done
}

ensure_base() {
    if [[ -f $BASE/.fresh-root-complete ]]; then
        log "base root ready: $BASE"
        return
    fi
    if ! command -v debootstrap >/dev/null 2>&1; then
        log "installing debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
                 apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
    fi
    local mirror=${MIRROR:-$(find_mirror | head -n1)}
    [[ -n $mirror ]] || die "no Debian mirror for '$SUITE' in /etc/apt/sources.list{,.d/*}; set MIRROR="
    local tmp=$BASE.partial
    if [[ -e $tmp ]]; then
        grep -q " ${tmp}[/ ]" /proc/mounts && die "$tmp has mounts; unmount them first"
        rm -rf --one-file-system "$tmp"
    fi
    log "debootstrap --variant=minbase $SUITE -> $BASE (mirror $mirror)"
    local t0=$SECONDS
    debootstrap --variant=minbase --include=git,make,ca-certificates \
        "$SUITE" "$tmp" "$mirror" >"$BASE.debootstrap.log" 2>&1 \
        || die "debootstrap failed; see $BASE.debootstrap.log"
    apt_clean_root "$tmp"
    touch "$tmp/.fresh-root-complete"
    mv "$tmp" "$BASE"
    log "base root built in $((SECONDS - t0)) s"
}

apt_clean_root() { chroot "$1" apt-get clean >/dev/null 2>&1 || true; }

# ---- per-run root -------------------------------------------------------------
run_dir='' root='' mounts=()

# shellcheck disable=SC2317  # invoked by trap
cleanup() {
    local rc=$? i p
    set +e
    if [[ -n $root && -d $root ]]; then
        # End processes this run left inside the chroot (by pid).
        for p in /proc/[0-9]*; do
            [[ $(readlink "$p/root" 2>/dev/null) == "$root" ]] && kill -9 "${p#/proc/}" 2>/dev/null
        done
        for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
            umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}"
        done
    fi
    if [[ -n $run_dir && -d $run_dir ]]; then
        if grep -q " $run_dir/" /proc/mounts; then
            log "WARNING: mounts remain under $run_dir; not removing it"
        elif ((keep)); then
            log "kept run directory: $run_dir"
        else
            rm -rf --one-file-system "$run_dir"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mnt() { # mnt TARGET MOUNT-ARGS...
    local target=$1; shift
    mkdir -p "$target"
    mount "$@" "$target"
    mounts+=("$target")
}

setup_run_root() {
    run_dir=$(mktemp -d "$BASE.run.XXXXXX")
    root=$run_dir/root
    mkdir -p "$run_dir/upper" "$run_dir/work" "$root"
    if mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$run_dir/upper,workdir=$run_dir/work" "$root" 2>/dev/null; then
        mounts+=("$root")
    else
        log "overlayfs unavailable; copying base root"
        cp -a "$BASE/." "$root/"
    fi
    mnt "$root/proc" -t proc proc
    mnt "$root/sys" --bind /sys
    mnt "$root/dev" --bind /dev
    mnt "$root/dev/pts" --bind /dev/pts
    if mountpoint -q /dev/shm; then mnt "$root/dev/shm" -t tmpfs -o mode=1777 tmpfs; fi

    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
    # Trust the same locally added CAs as this machine (e.g. a TLS-intercepting
    # egress proxy in front of the npm registry).
    if compgen -G '/usr/local/share/ca-certificates/*' >/dev/null; then
        cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
        chroot "$root" update-ca-certificates >/dev/null 2>&1 || log "WARNING: update-ca-certificates failed in chroot"
    fi
    # The host's apt sources replace debootstrap's single line, with the keyrings
    # they name and the host's Acquire:: settings (no hook scripts).
    local f k srcs=()
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -s $f ]] && srcs+=("$f")
    done
    if ((${#srcs[@]})); then
        : >"$root/etc/apt/sources.list"
        for f in "${srcs[@]}"; do cp "$f" "$root$f"; done
        for k in $(grep -hoiE '(signed-by[:=][[:space:]]*)/[^] ,[:space:]]+' "${srcs[@]}" | sed -E 's/^[^/]*//' | sort -u); do
            [[ -f $k && ! -e $root$k ]] && { mkdir -p "$root${k%/*}"; cp "$k" "$root$k"; }
        done
    fi
    for f in /etc/apt/apt.conf.d/*; do
        [[ -f $f && ! -e $root$f ]] || continue
        grep -q 'Acquire::' "$f" && ! grep -qi 'Invoke' "$f" && cp "$f" "$root$f"
    done
    # Never start services inside the chroot.
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod +x "$root/usr/sbin/policy-rc.d"
}

in_root() { # in_root SCRIPT: run bash -c SCRIPT in the chroot with a clean env
    # In the background + wait, so that INT/TERM run the cleanup trap at once.
    chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb CI=true \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        /bin/bash -c "$1" </dev/null &
    wait $!
}

ensure_base
setup_run_root

if ((prepare)); then
    log "smoke test: chroot apt-get update"
    # shellcheck disable=SC2016  # expands inside the chroot
    in_root 'apt-get update -qq && echo "fresh-root: chroot ok: $(. /etc/os-release; echo $PRETTY_NAME), apt-get update ok"'
    exit 0
fi

if [[ -z $repo ]]; then
    repo=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
fi
repo=$(realpath "$repo")
head=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo 'none: no commits')
log "cloning $repo (HEAD $head) -> /root/src"
git clone -q --no-hardlinks "$repo" "$root/root/src" 2>&1 | { grep -v 'cloned an empty repository' || true; }
if ((dirty)); then
    log "copying uncommitted and untracked files (--dirty)"
    git -C "$repo" ls-files -z -c -o --exclude-standard \
        | { grep -zvE '(^|/)node_modules/|^build/' || true; } \
        | (cd "$repo" && xargs -0r cp -a --parents -t "$root/root/src" 2>/dev/null || true)
    git -C "$repo" ls-files -z -d | (cd "$root/root/src" && xargs -0r rm -f)
fi

log "running in chroot: $cmd"
t0=$SECONDS
set +e
in_root "cd /root/src && $cmd"
rc=$?
set -e
log "exit $rc after $((SECONDS - t0)) s"
exit "$rc"
