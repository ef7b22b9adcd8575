#!/usr/bin/env bash
# Print the path of the first Python 3 interpreter that can `import jinja2, yaml`
# (tried in order: /usr/bin/python3, python3 on PATH, python3.11).
# Exits 1 with a message on stderr if none can. Used by the build for codegen.
set -euo pipefail

tried=()
for cand in /usr/bin/python3 python3 python3.11; do
    path=$(command -v "$cand" 2>/dev/null) || { tried+=("$cand (not found)"); continue; }
    if "$path" -c 'import jinja2, yaml' >/dev/null 2>&1; then
        printf '%s\n' "$path"
        exit 0
    fi
    tried+=("$path (cannot import jinja2, yaml)")
done

{
    echo "find-python: no Python 3 interpreter can 'import jinja2, yaml'."
    printf '  tried: %s\n' "${tried[@]}"
    echo "  fix: run scripts/install-deps.sh (installs python3-jinja2 python3-yaml)"
} >&2
exit 1
