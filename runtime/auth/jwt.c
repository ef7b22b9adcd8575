/*
 * runtime/auth/jwt.c — HS256 JWT verification and signing (see jwt.h).
 *
 * Owns base64url, the header check, the HMAC and the registered claims
 * iss/aud/exp/nbf. Deliberately strict: only alg HS256 is accepted, unknown
 * critical header parameters are refused, and base64url must be canonical so
 * that one signature has exactly one spelling.
 */
#include "errbuf.h"
#include "jwt.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SIG_LEN 32

static const char B64URL[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/*
 * Decode base64url into a fresh NUL-terminated buffer (the NUL lets JSON
 * segments go straight to cJSON). Returns 0, 1 when the text is not canonical
 * base64url, or -1 when out of memory.
 */
static int b64url_decode(const char *s, size_t n, unsigned char **out, size_t *out_len)
{
    size_t pad = 0;
    while (n > 0 && s[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    /* Padding is optional, but when present it must be the right amount. */
    if (pad > 0 && (n + pad) % 4 != 0)
        return 1;
    if (n % 4 == 1)
        return 1;

    unsigned char *buf = malloc(n / 4 * 3 + 3);
    if (!buf)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) {
            free(buf);
            return 1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits must be zero, or two strings would decode alike. */
    if (acc != 0) {
        free(buf);
        return 1;
    }
    buf[o] = '\0';
    *out = buf;
    *out_len = o;
    return 0;
}

/* Append the unpadded base64url of data to dst (which has room). */
static size_t b64url_encode(const unsigned char *data, size_t n, char *dst)
{
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        dst[o++] = B64URL[(v >> 18) & 63];
        dst[o++] = B64URL[(v >> 12) & 63];
        dst[o++] = B64URL[(v >> 6) & 63];
        dst[o++] = B64URL[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)data[i] << 16;
        dst[o++] = B64URL[(v >> 18) & 63];
        dst[o++] = B64URL[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;
        dst[o++] = B64URL[(v >> 18) & 63];
        dst[o++] = B64URL[(v >> 12) & 63];
        dst[o++] = B64URL[(v >> 6) & 63];
    }
    return o;
}

static size_t b64url_len(size_t n)
{
    return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

static int hmac_sha256(const char *secret, const char *data, size_t n,
                       unsigned char out[SIG_LEN])
{
    size_t klen = strlen(secret);
    unsigned int olen = 0;
    if (klen > INT_MAX)
        return -1;
    if (!HMAC(EVP_sha256(), secret, (int)klen, (const unsigned char *)data, n, out, &olen))
        return -1;
    return olen == SIG_LEN ? 0 : -1;
}

/* Decode one segment and parse it as a JSON object. Returns 0, 1 when the
 * segment is not a base64url JSON object, -1 when out of memory. */
static int decode_json_object(const char *s, size_t n, cJSON **out)
{
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    int rc = b64url_decode(s, n, &raw, &raw_len);
    if (rc != 0)
        return rc;
    /* An embedded NUL would let cJSON see a shorter document than we signed. */
    if (memchr(raw, '\0', raw_len)) {
        free(raw);
        return 1;
    }
    cJSON *json = cJSON_ParseWithOpts((const char *)raw, NULL, 1);
    free(raw);
    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        return 1;
    }
    *out = json;
    return 0;
}

static bool aud_matches(const cJSON *claim, const char *aud)
{
    if (cJSON_IsString(claim))
        return strcmp(claim->valuestring, aud) == 0;
    if (cJSON_IsArray(claim)) {
        const cJSON *item;
        cJSON_ArrayForEach(item, claim) {
            if (cJSON_IsString(item) && strcmp(item->valuestring, aud) == 0)
                return true;
        }
    }
    return false;
}

/* Check the registered claims of a verified payload. */
static anvil_jwt_status check_claims(const cJSON *payload, int64_t now_s, int64_t skew_s,
                                     const char *iss, const char *aud,
                                     char *err, size_t errlen, bool *expired)
{
    if (iss) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(payload, "iss");
        if (!cJSON_IsString(c) || strcmp(c->valuestring, iss) != 0) {
            anvil_errbuf_set(err, errlen, "Invalid token issuer");
            return ANVIL_JWT_REJECTED;
        }
    }
    if (aud && !aud_matches(cJSON_GetObjectItemCaseSensitive(payload, "aud"), aud)) {
        anvil_errbuf_set(err, errlen, "Invalid token audience");
        return ANVIL_JWT_REJECTED;
    }
    /* Doubles: NumericDate may be fractional and the sums cannot overflow. */
    double now = (double)now_s;
    double skew = (double)skew_s;
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(payload, "exp");
    if (exp) {
        if (!cJSON_IsNumber(exp)) {
            anvil_errbuf_set(err, errlen, "Invalid exp claim");
            return ANVIL_JWT_REJECTED;
        }
        if (now > exp->valuedouble + skew) {
            if (expired)
                *expired = true;
            anvil_errbuf_set(err, errlen, "Token expired");
            return ANVIL_JWT_REJECTED;
        }
    }
    const cJSON *nbf = cJSON_GetObjectItemCaseSensitive(payload, "nbf");
    if (nbf) {
        if (!cJSON_IsNumber(nbf)) {
            anvil_errbuf_set(err, errlen, "Invalid nbf claim");
            return ANVIL_JWT_REJECTED;
        }
        if (now + skew < nbf->valuedouble) {
            anvil_errbuf_set(err, errlen, "Token not yet valid");
            return ANVIL_JWT_REJECTED;
        }
    }
    return ANVIL_JWT_OK;
}

static anvil_jwt_status check_header(const char *s, size_t n, char *err, size_t errlen)
{
    cJSON *header = NULL;
    int rc = decode_json_object(s, n, &header);
    if (rc < 0) {
        anvil_errbuf_set(err, errlen, "Out of memory");
        return ANVIL_JWT_ERROR;
    }
    if (rc > 0) {
        anvil_errbuf_set(err, errlen, "Malformed token");
        return ANVIL_JWT_REJECTED;
    }
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(header, "alg");
    bool ok = cJSON_IsString(alg) && strcmp(alg->valuestring, "HS256") == 0;
    /* We implement no header extensions, so any critical one must fail. */
    bool crit = cJSON_GetObjectItemCaseSensitive(header, "crit") != NULL;
    cJSON_Delete(header);
    if (!ok) {
        anvil_errbuf_set(err, errlen, "Unsupported token algorithm");
        return ANVIL_JWT_REJECTED;
    }
    if (crit) {
        anvil_errbuf_set(err, errlen, "Unsupported critical token header");
        return ANVIL_JWT_REJECTED;
    }
    return ANVIL_JWT_OK;
}

static anvil_jwt_status check_signature(const char *token, size_t signed_len,
                                        const char *sig, size_t sig_n,
                                        const char *secret, char *err, size_t errlen)
{
    unsigned char want[SIG_LEN];
    if (hmac_sha256(secret, token, signed_len, want) != 0) {
        anvil_errbuf_set(err, errlen, "HMAC failed");
        return ANVIL_JWT_ERROR;
    }
    unsigned char *got = NULL;
    size_t got_len = 0;
    int rc = b64url_decode(sig, sig_n, &got, &got_len);
    if (rc < 0) {
        anvil_errbuf_set(err, errlen, "Out of memory");
        return ANVIL_JWT_ERROR;
    }
    bool ok = rc == 0 && got_len == SIG_LEN && CRYPTO_memcmp(got, want, SIG_LEN) == 0;
    free(got);
    if (!ok) {
        anvil_errbuf_set(err, errlen, "Invalid token signature");
        return ANVIL_JWT_REJECTED;
    }
    return ANVIL_JWT_OK;
}

anvil_jwt_status anvil_jwt_verify_hs256(const char *token, const char *secret,
                                        int64_t now_s, int64_t skew_s,
                                        const char *iss, const char *aud,
                                        cJSON **payload_out,
                                        char *err, size_t errlen,
                                        bool *expired)
{
    if (expired)
        *expired = false;
    if (payload_out)
        *payload_out = NULL;
    anvil_errbuf_set(err, errlen, "%s", "");
    if (!payload_out) {
        anvil_errbuf_set(err, errlen, "No payload destination");
        return ANVIL_JWT_ERROR;
    }
    if (!secret || !*secret) {
        anvil_errbuf_set(err, errlen, "JWT secret not configured");
        return ANVIL_JWT_ERROR;
    }
    if (!token || !*token) {
        anvil_errbuf_set(err, errlen, "Missing bearer token");
        return ANVIL_JWT_REJECTED;
    }
    size_t len = 0;
    while (len <= ANVIL_JWT_MAX_TOKEN && token[len])
        len++;
    if (len > ANVIL_JWT_MAX_TOKEN) {
        anvil_errbuf_set(err, errlen, "Token too large");
        return ANVIL_JWT_REJECTED;
    }
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token))) {
        anvil_errbuf_set(err, errlen, "Malformed token");
        return ANVIL_JWT_REJECTED;
    }

    anvil_jwt_status st = check_header(token, (size_t)(dot1 - token), err, errlen);
    if (st != ANVIL_JWT_OK)
        return st;
    st = check_signature(token, (size_t)(dot2 - token), dot2 + 1,
                         len - (size_t)(dot2 + 1 - token), secret, err, errlen);
    if (st != ANVIL_JWT_OK)
        return st;

    cJSON *payload = NULL;
    int rc = decode_json_object(dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload);
    if (rc < 0) {
        anvil_errbuf_set(err, errlen, "Out of memory");
        return ANVIL_JWT_ERROR;
    }
    if (rc > 0) {
        anvil_errbuf_set(err, errlen, "Malformed token payload");
        return ANVIL_JWT_REJECTED;
    }
    st = check_claims(payload, now_s, skew_s, iss, aud, err, errlen, expired);
    if (st != ANVIL_JWT_OK) {
        cJSON_Delete(payload);
        return st;
    }
    *payload_out = payload;
    return ANVIL_JWT_OK;
}

char *anvil_jwt_sign_hs256(const char *payload_json, const char *secret)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    if (!payload_json || !secret || !*secret)
        return NULL;
    size_t hlen = sizeof header - 1;
    size_t plen = strlen(payload_json);
    if (plen > (SIZE_MAX - 64) / 2)
        return NULL;
    size_t total = b64url_len(hlen) + 1 + b64url_len(plen) + 1 + b64url_len(SIG_LEN);
    char *out = malloc(total + 1);
    if (!out)
        return NULL;
    size_t o = b64url_encode((const unsigned char *)header, hlen, out);
    out[o++] = '.';
    o += b64url_encode((const unsigned char *)payload_json, plen, out + o);
    unsigned char sig[SIG_LEN];
    if (hmac_sha256(secret, out, o, sig) != 0) {
        free(out);
        return NULL;
    }
    out[o++] = '.';
    o += b64url_encode(sig, SIG_LEN, out + o);
    out[o] = '\0';
    return out;
}
