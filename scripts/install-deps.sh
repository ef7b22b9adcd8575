#!/usr/bin/env bash
# Install everything Anvil needs to build, test, fuzz, lint and bench on Debian 12.
# Idempotent and quick when everything is present: checks with dpkg-query first,
# runs `apt-get update` (once) only when a package is missing, installs the
# missing ones in one apt-get call, then installs the project-local npm trees
# (the OpenAPI linter in tools/lint/, the upstream client, Bun and Node 22 in
# tests/client/, playwright-core in tests/browser/) with `npm ci`, each only
# when it is missing or stale.
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
    libjemalloc-dev                     # the server's allocator (ANVIL_JEMALLOC)
    python3 python3-jinja2 python3-yaml python3-websockets python3-jsonschema python3-prometheus-client
    curl wrk sqlite3 procps
    chromium fonts-dejavu-core          # the browser tests (tests/browser/): Debian's chromium, never a
                                        # download. --no-install-recommends skips its fonts-liberation; the
                                        # font is named so screenshots do not hang on which alternative of
                                        # fontconfig-config's font dependency apt picks
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

# Project-local npm trees, each a package.json + package-lock.json directory
# installed with `npm ci`: the OpenAPI linter and the AsyncAPI parser that
# checks generated/asyncapi.yaml (tools/lint), and the upstream's
# published gateway client under Bun (tests/client, the client.upstream test),
# and openapi-typescript + openapi-fetch (tests/openapi_fetch, the
# integration.openapi_fetch test), and playwright-core driving Debian's
# chromium (tests/browser, the browser.* tests).
#
# npm_ci_if_stale DIR BIN [NODE]: `npm ci` in DIR when DIR/node_modules/.bin/BIN
# is missing or older than DIR's package.json or package-lock.json, then check
# that `BIN --version` runs (under NODE when given: a tool that needs a newer
# Node than Debian 12's 18).
# lstat times (stat without -L): npm sets package files' mtimes to a fixed old
# date, so only the .bin symlink itself tells when the install happened.
mtime() { stat -c %Y "$1" 2>/dev/null || echo 0; }
npm_ci_if_stale() {
    local dir=$1 name=$2 node=${3:-}
    local bin=$dir/node_modules/.bin/$name
    [[ -f $dir/package.json && -f $dir/package-lock.json ]] \
        || die "$dir/package.json or $dir/package-lock.json missing"
    if [[ ! -L $bin && ! -e $bin ]] \
        || (($(mtime "$bin") < $(mtime "$dir/package-lock.json"))) \
        || (($(mtime "$bin") < $(mtime "$dir/package.json"))); then
        log "npm ci in $dir (node $(node --version), npm $(npm --version))"
        npm ci --no-audit --no-fund --loglevel=error --prefix "$dir" \
            || die "npm ci in $dir failed"
        [[ -e $bin ]] || die "$bin missing after npm ci"
        touch -h "$bin"
    else
        log "$name: up to date in $dir"
    fi
    if [[ -n $node ]]; then
        "$node" "$bin" --version >/dev/null 2>&1 || die "$node $bin --version fails"
    else
        "$bin" --version >/dev/null 2>&1 || die "$bin --version fails (node $(node --version))"
    fi
}
npm_ci_if_stale tools/lint redocly
npm_ci_if_stale tests/client bun
npm_ci_if_stale tests/openapi_fetch openapi-typescript
# playwright-core 1.65 refuses Node < 20: checked (and run by CTest) under
# the Node 22 tests/client pins, installed just above.
npm_ci_if_stale tests/browser playwright-core tests/client/node_modules/.bin/node

# Codegen needs a python3 with jinja2 and yaml.
py=$(scripts/find-python.sh) || die "no python3 can 'import jinja2, yaml' (see above)"
log "python: $py (jinja2, yaml ok)"
log "done"
