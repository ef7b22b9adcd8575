/*
 * runtime/base/utf8.c — see utf8.h.
 */
#include "utf8.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

char *anvil_utf8_clean(const char *s, size_t len)
{
    char *out = malloc(len * 3 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        size_t need;
        if (c >= 0x01 && c < 0x80)
            need = 0;
        else if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c >= 0xE0 && c <= 0xEF)
            need = 2;
        else if (c >= 0xF0 && c <= 0xF4)
            need = 3;
        else
            need = SIZE_MAX;   /* NUL, stray continuation, overlong lead, > U+10FFFF */
        bool ok = need != SIZE_MAX && i + need < len;
        for (size_t k = 1; ok && k <= need; k++)
            ok = (p[i + k] & 0xC0) == 0x80;
        if (ok) {
            memcpy(out + o, p + i, need + 1);
            o += need + 1;
            i += need + 1;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    return out;
}
