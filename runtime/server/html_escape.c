/* runtime/server/html_escape.c — see html_escape.h. */
#include "html_escape.h"

#include <string.h>

int anvil_html_escape_add(struct evbuffer *b, const char *s)
{
    while (*s) {
        size_t plain = strcspn(s, "&<>\"");
        if (plain && evbuffer_add(b, s, plain) != 0)
            return -1;
        s += plain;
        if (!*s)
            break;
        const char *ent = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : "&quot;";
        if (evbuffer_add(b, ent, strlen(ent)) != 0)
            return -1;
        s++;
    }
    return 0;
}
