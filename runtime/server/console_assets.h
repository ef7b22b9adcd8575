/*
 * runtime/server/console_assets.h — the operator console's files, compiled
 * into the binary by scripts/embed-console.py from console/ (the table is
 * generated into the build tree; nothing is read from disk at run time).
 */
#ifndef ANVIL_CONSOLE_ASSETS_H
#define ANVIL_CONSOLE_ASSETS_H

#include <stddef.h>

typedef struct anvil_console_asset {
    const char *path;                 /* relative to console/, e.g. "js/api.js" */
    const char *content_type;
    const unsigned char *data;        /* len bytes, then a NUL */
    size_t len;
} anvil_console_asset;

/* A hash of every file: the <version> in <console.path>/assets/<version>/. */
extern const char anvil_console_version[];
extern const anvil_console_asset anvil_console_assets[];
extern const size_t anvil_console_n_assets;

#endif
