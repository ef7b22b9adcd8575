#!/usr/bin/env bash
# Install everything Anvil needs to build, test, fuzz, lint and bench on Debian 12.
# Idempotent and quick when everything is present: checks with dpkg-query first,
# runs `apt-get update` (once) only when a package is missing, installs the
# missing ones in one apt-get call, then installs the project-local OpenAPI
# linter into tools/lint/ with `npm ci` only when it is missing or stale.
# Works as root on a minimal Debian 12 root (debootstrap --variant=minbase).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'install-deps: %s\n' "$*"; }
die() { printf 'install-deps: ERROR: %s\n' "$*" >&2; exit 1; }

pkgs=(
    build-essential cmake pkg-config
    clang libclang-rt-14-dev            # libFuzzer / ASan / UBSan runtimes
    libevent-dev libwebsockets-dev libcjson-dev libsqlite3-dev libssl-dev libyaml-dev
    libgit2-dev                         # versioned run workspaces (time travel)
    python3 python3-jinja2 python3-yaml python3-websockets
    curl wrk sqlite3 procps
)

# Node.js: keep whatever node+npm is already installed (e.g. NodeSource's node,
# which bundles npm and conflicts with Debian's npm package).
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    have_node=1
else
    have_node=0
    pkgs+=(nodejs npm)
fi

missing=()
for p in "${pkgs[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]})); then
    sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || die "not root and no sudo; as root run: apt-get install ${missing[*]}"
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    log "missing apt packages: ${missing[*]}"
    log "apt-get update"
    "${sudo[@]}" apt-get update -qq
    log "apt-get install (${#missing[@]} packages)"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        || die "apt-get install failed"
else
    log "apt packages: all ${#pkgs[@]} present"
fi

# Node may have just been installed.
hash -r
command -v node >/dev/null 2>&1 || die "node not on PATH after install"
command -v npm >/dev/null 2>&1 || die "npm not on PATH after install"
((have_node)) || log "node $(node --version) installed from Debian"

# Project-local OpenAPI linter (tools/lint/node_modules/.bin/redocly).
lint=tools/lint
bin=$lint/node_modules/.bin/redocly
[[ -f $lint/package.json && -f $lint/package-lock.json ]] \
    || die "$lint/package.json or $lint/package-lock.json missing"
# lstat times (stat without -L): npm sets package files' mtimes to a fixed old
# date, so only the .bin symlink itself tells when the install happened.
mtime() { stat -c %Y "$1" 2>/dev/null || echo 0; }
if [[ ! -L $bin && ! -e $bin ]] \
    || (($(mtime "$bin") < $(mtime $lint/package-lock.json))) \
    || (($(mtime "$bin") < $(mtime $lint/package.json))); then
    log "npm ci in $lint (node $(node --version), npm $(npm --version))"
    npm ci --no-audit --no-fund --loglevel=error --prefix "$lint" \
        || die "npm ci in $lint failed"
    [[ -e $bin ]] || die "$bin missing after npm ci"
    touch -h "$bin"
else
    log "redocly: up to date in $lint"
fi
"$bin" --version >/dev/null 2>&1 || die "$bin does not run under node $(node --version)"

# Codegen needs a python3 with jinja2 and yaml.
py=$(scripts/find-python.sh) || die "no python3 can 'import jinja2, yaml' (see above)"
log "python: $py (jinja2, yaml ok)"
log "done"
