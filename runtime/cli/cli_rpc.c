/*
 * runtime/cli/cli_rpc.c — a generic client: one POST /v1/rpc/{method} over a
 * blocking socket, the response frame printed as indented JSON.
 *
 * The token comes from --token, else $ANVIL_TOKEN. The URL from --url, else
 * $ANVIL_URL, else http://127.0.0.1:7331.
 */
#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli_rpc.h"

static int parse_url(const char *url, char *host, size_t hostlen, char *port, size_t portlen)
{
    if (strncmp(url, "http://", 7) != 0)
        return -1;
    const char *h = url + 7;
    const char *end = h + strcspn(h, "/");
    const char *colon = NULL;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb)
            return -1;
        if ((size_t)(rb - h - 1) >= hostlen)
            return -1;
        memcpy(host, h + 1, (size_t)(rb - h - 1));
        host[rb - h - 1] = '\0';
        colon = (rb + 1 < end && rb[1] == ':') ? rb + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        const char *hend = colon ? colon : end;
        if ((size_t)(hend - h) >= hostlen || hend == h)
            return -1;
        memcpy(host, h, (size_t)(hend - h));
        host[hend - h] = '\0';
    }
    if (colon) {
        if ((size_t)(end - colon - 1) >= portlen || end == colon + 1)
            return -1;
        memcpy(port, colon + 1, (size_t)(end - colon - 1));
        port[end - colon - 1] = '\0';
    } else {
        snprintf(port, portlen, "80");
    }
    return 0;
}

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        struct timeval tv = { 30, 0 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int anvil_cli_rpc(int argc, char **argv)
{
    static const struct option opts[] = {
        { "url", required_argument, NULL, 'u' },
        { "token", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    bool url_from_flag = false;
    const char *url = getenv("ANVIL_URL"), *token = getenv("ANVIL_TOKEN");
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "u:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'u': url = optarg; url_from_flag = true; break;
        case 't': token = optarg; break;
        case 'h':
            printf("usage: anvil rpc METHOD [JSON] [--url URL] [--token T]\n"
                   "  URL defaults to $ANVIL_URL, else http://127.0.0.1:7331; T to $ANVIL_TOKEN\n");
            return 0;
        default:
            fprintf(stderr, "usage: anvil rpc METHOD [JSON] [--url URL] [--token T]\n");
            return 2;
        }
    }
    if (optind >= argc || argc - optind > 2) {
        fprintf(stderr, "usage: anvil rpc METHOD [JSON] [--url URL] [--token T]\n");
        return 2;
    }
    const char *method = argv[optind];
    const char *params = optind + 1 < argc ? argv[optind + 1] : "{}";
    cJSON *check = cJSON_Parse(params);
    if (!check || !cJSON_IsObject(check)) {
        fprintf(stderr, "anvil rpc: params must be a JSON object, got: %s\n", params);
        cJSON_Delete(check);
        return 2;
    }
    cJSON_Delete(check);
    if (strchr(method, '/') || strchr(method, ' ') || strchr(method, '\r') || strchr(method, '\n')) {
        fprintf(stderr, "anvil rpc: invalid method name %s\n", method);
        return 2;
    }
    if (!url)
        url = "http://127.0.0.1:7331";
    char host[256], port[16];
    if (parse_url(url, host, sizeof host, port, sizeof port) != 0) {
        fprintf(stderr, "anvil rpc: %s must look like http://HOST:PORT, got %s\n",
                url_from_flag ? "--url" : "ANVIL_URL", url);
        return 2;
    }
    if (token && (strchr(token, '\r') || strchr(token, '\n'))) {
        fprintf(stderr, "anvil rpc: token contains a line break\n");
        return 2;
    }
    int fd = connect_to(host, port);
    if (fd < 0) {
        fprintf(stderr, "anvil rpc: cannot connect to %s\n", url);
        return 3;
    }
    char *req = NULL;
    int n = asprintf(&req,
                     "POST /v1/rpc/%s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n%s%s%s\r\n%s",
                     method, host, port, strlen(params), token ? "Authorization: Bearer " : "",
                     token ? token : "", token ? "\r\n" : "", params);
    if (n < 0 || write_all(fd, req, (size_t)n) != 0) {
        free(req);
        close(fd);
        fprintf(stderr, "anvil rpc: cannot send the request to %s\n", url);
        return 3;
    }
    free(req);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        if (len + 4096 > cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (!buf) {
        fprintf(stderr, "anvil rpc: out of memory\n");
        return 1;
    }
    buf[len] = '\0';
    char *body = strstr(buf, "\r\n\r\n");
    if (!body) {
        fprintf(stderr, "anvil rpc: malformed response from %s\n", url);
        free(buf);
        return 3;
    }
    body += 4;
    cJSON *frame = cJSON_Parse(body);
    int rc = 1;
    if (frame) {
        char *pretty = cJSON_Print(frame);
        printf("%s\n", pretty ? pretty : body);
        free(pretty);
        rc = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(frame, "ok")) ? 0 : 1;
        cJSON_Delete(frame);
    } else {
        printf("%s\n", body);
    }
    free(buf);
    return rc;
}
