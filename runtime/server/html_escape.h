/*
 * runtime/server/html_escape.h — text into HTML (element content or a
 * double-quoted attribute) for the pages the server writes itself.
 */
#ifndef ANVIL_HTML_ESCAPE_H
#define ANVIL_HTML_ESCAPE_H

#include <event2/buffer.h>

/* Append s with & < > " escaped. Returns 0, or -1 when out of memory. */
int anvil_html_escape_add(struct evbuffer *b, const char *s);

#endif
