/*
 * tests/unit/test_jwt.c — HS256 verification and signing (runtime/auth/jwt.c).
 *
 * Tokens are built here with a test-local base64url encoder and OpenSSL's
 * HMAC, so the verifier is not only checked against its own signer; two
 * tokens produced in a shell with `openssl dgst -hmac` pin it to an outside
 * implementation.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "jwt.h"
#include "unit.h"

/* printf '{"alg":"HS256","typ":"JWT"}' / payload below | basenc --base64url,
 * signed with: openssl dgst -sha256 -hmac outside-secret -binary */
#define OUTSIDE_PAYLOAD                                                              \
    "{\"sub\":\"user:alice\",\"iss\":\"anvil-test\",\"aud\":[\"other\",\"anvil\"],"  \
    "\"role\":\"admin\",\"scope\":\"run:read, cron:write\",\"exp\":4102444800,"      \
    "\"nbf\":1700000000}"
#define OUTSIDE_TOKEN                                                                \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."                                          \
    "eyJzdWIiOiJ1c2VyOmFsaWNlIiwiaXNzIjoiYW52aWwtdGVzdCIsImF1ZCI6WyJvdGhlciIsImFu"   \
    "dmlsIl0sInJvbGUiOiJhZG1pbiIsInNjb3BlIjoicnVuOnJlYWQsIGNyb246d3JpdGUiLCJleHAi"   \
    "OjQxMDI0NDQ4MDAsIm5iZiI6MTcwMDAwMDAwMH0."                                       \
    "8uXjan8uuDawahE37fan3f4lvfNjNMoQ67PD-1NTO7I"
/* Same tool, but with basenc's '=' padding left on every segment. */
#define OUTSIDE_PADDED                                                               \
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwYWQifQ==."                                     \
    "td6XWJncgJ8iYTVoT16IToFqyxDjxgtqMrI6vhjIYMM="

#define SECRET "test-secret"
#define NOW 1800000000

static char *b64url(const void *data, size_t n)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *d = data;
    char *out = malloc(n / 3 * 4 + 5);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16;
        if (i + 1 < n) v |= (uint32_t)d[i + 1] << 8;
        if (i + 2 < n) v |= d[i + 2];
        out[o++] = a[(v >> 18) & 63];
        out[o++] = a[(v >> 12) & 63];
        if (i + 1 < n) out[o++] = a[(v >> 6) & 63];
        if (i + 2 < n) out[o++] = a[v & 63];
    }
    out[o] = '\0';
    return out;
}

/* header.payload given as already-encoded text, signed with HS256. */
static char *sign_encoded(const char *h, const char *p, const char *secret)
{
    size_t n = strlen(h) + strlen(p) + 2;
    char *input = malloc(n);
    snprintf(input, n, "%s.%s", h, p);
    unsigned char mac[32];
    unsigned int mlen = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)input,
         strlen(input), mac, &mlen);
    char *sig = b64url(mac, mlen);
    char *tok = malloc(n + strlen(sig) + 1);
    sprintf(tok, "%s.%s", input, sig);
    free(input);
    free(sig);
    return tok;
}

static char *make_token(const char *header_json, const char *payload_json, const char *secret)
{
    char *h = b64url(header_json, strlen(header_json));
    char *p = b64url(payload_json, strlen(payload_json));
    char *t = sign_encoded(h, p, secret);
    free(h);
    free(p);
    return t;
}

static anvil_jwt_status verify(const char *tok, const char *secret, int64_t now, int64_t skew,
                               const char *iss, const char *aud, char *err, bool *expired)
{
    cJSON *payload = NULL;
    anvil_jwt_status st = anvil_jwt_verify_hs256(tok, secret, now, skew, iss, aud,
                                                 &payload, err, 128, expired);
    if (st == ANVIL_JWT_OK) {
        CHECK(cJSON_IsObject(payload));
    } else {
        CHECK(payload == NULL);
    }
    cJSON_Delete(payload);
    return st;
}

/* Verify with no iss/aud and no skew; return the status, err in buf. */
static anvil_jwt_status plain(const char *tok, char *err)
{
    bool expired = true;
    anvil_jwt_status st = verify(tok, SECRET, NOW, 0, NULL, NULL, err, &expired);
    CHECK(!expired || strcmp(err, "Token expired") == 0);
    return st;
}

static void test_outside_token(void)
{
    char err[128];
    bool expired = true;
    cJSON *payload = NULL;
    CHECK_INT(anvil_jwt_verify_hs256(OUTSIDE_TOKEN, "outside-secret", NOW, 60, "anvil-test",
                                     "anvil", &payload, err, sizeof err, &expired),
              ANVIL_JWT_OK);
    CHECK(!expired);
    CHECK_STR(err, "");
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(payload, "sub");
    CHECK(cJSON_IsString(sub));
    CHECK_STR(cJSON_IsString(sub) ? sub->valuestring : NULL, "user:alice");
    cJSON_Delete(payload);

    /* Our signer must produce the outside tool's exact bytes. */
    char *mine = anvil_jwt_sign_hs256(OUTSIDE_PAYLOAD, "outside-secret");
    CHECK_STR(mine, OUTSIDE_TOKEN);
    free(mine);

    CHECK_INT(verify(OUTSIDE_TOKEN, "other-secret", NOW, 60, NULL, NULL, err, &expired),
              ANVIL_JWT_REJECTED);
    CHECK_STR(err, "Invalid token signature");
    CHECK_INT(verify(OUTSIDE_PADDED, "outside-secret", NOW, 0, NULL, NULL, err, &expired),
              ANVIL_JWT_OK);
}

static void test_sign_roundtrip(void)
{
    char err[128];
    char *tok = anvil_jwt_sign_hs256("{\"sub\":\"bob\",\"exp\":1900000000}", SECRET);
    CHECK(tok != NULL);
    CHECK(tok && strncmp(tok, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37) == 0);
    CHECK(tok && strchr(tok, '=') == NULL);
    CHECK_INT(plain(tok, err), ANVIL_JWT_OK);
    free(tok);

    CHECK(anvil_jwt_sign_hs256(NULL, SECRET) == NULL);
    CHECK(anvil_jwt_sign_hs256("{}", NULL) == NULL);
    CHECK(anvil_jwt_sign_hs256("{}", "") == NULL);
}

static void test_tampering(void)
{
    char err[128];
    char *tok = make_token("{\"alg\":\"HS256\"}", "{\"sub\":\"bob\"}", SECRET);
    CHECK_INT(plain(tok, err), ANVIL_JWT_OK);

    /* Flip one character of the signature (not the last: its low bits are
     * partly padding, and a canonical-decoding failure would hide the point). */
    char *sig = strrchr(tok, '.') + 1;
    sig[3] = sig[3] == 'A' ? 'B' : 'A';
    CHECK_INT(plain(tok, err), ANVIL_JWT_REJECTED);
    CHECK_STR(err, "Invalid token signature");
    free(tok);

    /* A different payload under a signature made for another one. */
    char *a = make_token("{\"alg\":\"HS256\"}", "{\"role\":\"viewer\"}", SECRET);
    char *b = make_token("{\"alg\":\"HS256\"}", "{\"role\":\"admin\"}", SECRET);
    char *a_sig = strrchr(a, '.');
    char *b_sig = strrchr(b, '.');
    size_t keep = (size_t)(b_sig - b);
    char *forged = malloc(keep + strlen(a_sig) + 1);
    memcpy(forged, b, keep);
    strcpy(forged + keep, a_sig);
    CHECK_INT(plain(forged, err), ANVIL_JWT_REJECTED);
    CHECK_STR(err, "Invalid token signature");
    free(forged);
    free(a);
    free(b);

    tok = make_token("{\"alg\":\"HS256\"}", "{}", "wrong-secret");
    CHECK_INT(plain(tok, err), ANVIL_JWT_REJECTED);
    CHECK_STR(err, "Invalid token signature");
    free(tok);

    /* Truncated signature and an empty one. */
    tok = make_token("{\"alg\":\"HS256\"}", "{}", SECRET);
    tok[strlen(tok) - 4] = '\0';
    CHECK_INT(plain(tok, err), ANVIL_JWT_REJECTED);
    *(strrchr(tok, '.') + 1) = '\0';
    CHECK_INT(plain(tok, err), ANVIL_JWT_REJECTED);
    CHECK_STR(err, "Invalid token signature");
    free(tok);
}

static void test_algorithms(void)
{
    char err[128];
    /* alg none with no signature, the classic downgrade. */
    CHECK_INT(plain("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJib2IifQ.", err),
              ANVIL_JWT_REJECTED);
    CHECK_STR(err, "Unsupported token algorithm");

    /* Correct HS256 MACs under headers that do not say HS256. */
    const char *bad_headers[] = {
        "{\"alg\":\"none\"}", "{\"alg\":\"HS512\"}", "{\"typ\":\"JWT\"}",
        "{\"alg\":\"hs256\"}", "{\"alg\":\"HS256 \"}", "{\"alg\":256}",
        "{\"alg\":null}",
    };
    for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers[0]; i++) {
        char *tok = make_token(bad_headers[i], "{}", SECRET);
        CHECK_INT(plain(tok, err), ANVIL_JWT_REJECTED);
        CHECK_STR(err, "Unsupported token algorithm");
        free(tok);
    }

    char *tok = make_token("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "{}", SECRET);
    CHECK_INT(plain(tok, err), ANVIL_JWT_REJECTED);
    CHECK_STR(err, "Unsupported critical token header");
    free(tok);

    /* typ is optional and not interpreted. */
    tok = make_token("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", "{}", SECRET);
    CHECK_INT(plain(tok, err), ANVIL_JWT_OK);
    free(tok);
}

static void test_issuer_audience(void)
{
    char err[128];
    bool expired;
    char *tok = make_token("{\"alg\":\"HS256\"}",
                           "{\"iss\":\"anvil\",\"aud\":\"console\"}", SECRET);
    CHECK_INT(verify(tok, SECRET, NOW, 0, "anvil", "console", err, &expired), ANVIL_JWT_OK);
    CHECK_INT(verify(tok, SECRET, NOW, 0, NULL, NULL, err, &expired), ANVIL_JWT_OK);
    CHECK_INT(verify(tok, SECRET, NOW, 0, "evil", NULL, err, &expired), ANVIL_JWT_REJECTED);
    CHECK_STR(err, "Invalid token issuer");
    CHECK(!expired);
    CHECK_INT(verify(tok, SECRET, NOW, 0, "anvi", NULL, err, &expired), ANVIL_JWT_REJECTED);
    CHECK_INT(verify(tok, SECRET, NOW, 0, NULL, "api", err, &expired), ANVIL_JWT_REJECTED);
    CHECK_STR(err, "Invalid token audience");
    free(tok);

    tok = make_token("{\"alg\":\"HS256\"}", "{\"aud\":[\"a\",7,\"console\"]}", SECRET);
    CHECK_INT(verify(tok, SECRET, NOW, 0, NULL, "console", err, &expired), ANVIL_JWT_OK);
    CHECK_INT(verify(tok, SECRET, NOW, 0, NULL, "b", err, &expired), ANVIL_JWT_REJECTED);
    /* Configured issuer but the claim is missing or not a string. */
    CHECK_INT(verify(tok, SECRET, NOW, 0, "anvil", NULL, err, &expired), ANVIL_JWT_REJECTED);
    free(tok);

    tok = make_token("{\"alg\":\"HS256\"}", "{\"iss\":1,\"aud\":{\"x\":\"console\"}}", SECRET);
    CHECK_INT(verify(tok, SECRET, NOW, 0, "1", NULL, err, &expired), ANVIL_JWT_REJECTED);
    CHECK_INT(verify(tok, SECRET, NOW, 0, NULL, "console", err, &expired), ANVIL_JWT_REJECTED);
    free(tok);
}

static void test_times(void)
{
    char err[128];
    bool expired = false;
    char *tok = make_token("{\"alg\":\"HS256\"}", "{\"exp\":1000}", SECRET);
    CHECK_INT(verify(tok, SECRET, 1000, 0, NULL, NULL, err, &expired), ANVIL_JWT_OK);
    CHECK_INT(verify(tok, SECRET, 1001, 0, NULL, NULL, err, &expired), ANVIL_JWT_REJECTED);
    CHECK_STR(err, "Token expired");
    CHECK(expired);
    /* Skew keeps it alive up to exp + skew, inclusive. */
    CHECK_INT(verify(tok, SECRET, 1060, 60, NULL, NULL, err, &expired), ANVIL_JWT_OK);
    CHECK(!expired);
    CHECK_INT(verify(tok, SECRET, 1061, 60, NULL, NULL, err, &expired), ANVIL_JWT_REJECTED);
    CHECK(expired);
    free(tok);

    tok = make_token("{\"alg\":\"HS256\"}", "{\"exp\":1000.5}", SECRET);
    CHECK_INT(verify(tok, SECRET, 1000, 0, NULL, NULL, err, &expired), ANVIL_JWT_OK);
    CHECK_INT(verify(tok, SECRET, 1001, 0, NULL, NULL, err, &expired), ANVIL_JWT_REJECTED);
    free(tok);

    tok = make_token("{\"alg\":\"HS256\"}", "{\"nbf\":2000}", SECRET);
    CHECK_INT(verify(tok, SECRET, 1999, 0, NULL, NULL, err, &expired), ANVIL_JWT_REJECTED);
    CHECK_STR(err, "Token not yet valid");
    CHECK(!expired);
    CHECK_INT(verify(tok, SECRET, 2000, 0, NULL, NULL, err, &expired), ANVIL_JWT_OK);
    CHECK_INT(verify(tok, SECRET, 1940, 60, NULL, NULL, err, &expired), ANVIL_JWT_OK);
    CHECK_INT(verify(tok, SECRET, 1939, 60, NULL, NULL, err, &expired), ANVIL_JWT_REJECTED);
    free(tok);

    tok = make_token("{\"alg\":\"HS256\"}", "{\"exp\":\"2000\"}", SECRET);
    CHECK_INT(verify(tok, SECRET, 1, 0, NULL, NULL, err, &expired), ANVIL_JWT_REJECTED);
    CHECK_STR(err, "Invalid exp claim");
    CHECK(!expired);
    free(tok);
    tok = make_token("{\"alg\":\"HS256\"}", "{\"nbf\":true}", SECRET);
    CHECK_INT(verify(tok, SECRET, 1, 0, NULL, NULL, err, &expired), ANVIL_JWT_REJECTED);
    CHECK_STR(err, "Invalid nbf claim");
    free(tok);
}

/* A token whose encoded payload text is given, validly signed. */
static anvil_jwt_status with_payload_text(const char *p, char *err)
{
    char *h = b64url("{\"alg\":\"HS256\"}", 15);
    char *tok = sign_encoded(h, p, SECRET);
    anvil_jwt_status st = plain(tok, err);
    free(h);
    free(tok);
    return st;
}

static void test_malformed(void)
{
    char err[128];
    const char *shapes[] = {
        "", "abc", "a.b", "a.b.c.d", "..", "eyJhbGciOiJIUzI1NiJ9..",
        "eyJhbGciOiJIUzI1NiJ9.e30.x.y",
        /* '+' and '/' are plain base64, not base64url. */
        "eyJhbGciOiJIUzI1NiJ9+.e30.AAAA",
        "e/JhbGciOiJIUzI1NiJ9.e30.AAAA",
        /* Header is not JSON / not an object. */
        "bm90LWpzb24.e30.AAAA", "WzFd.e30.AAAA",
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        CHECK_INT(plain(shapes[i], err), ANVIL_JWT_REJECTED);
        CHECK(err[0] != '\0');
    }

    /* Validly signed, but the payload segment is broken. */
    CHECK_INT(with_payload_text("e30", err), ANVIL_JWT_OK);                 /* {} */
    CHECK_INT(with_payload_text("e30=", err), ANVIL_JWT_OK);                /* padded */
    CHECK_INT(with_payload_text("e30==", err), ANVIL_JWT_REJECTED);         /* too much */
    CHECK_INT(with_payload_text("e3=0", err), ANVIL_JWT_REJECTED);          /* inner '=' */
    CHECK_INT(with_payload_text("e31", err), ANVIL_JWT_REJECTED);           /* spare bits */
    CHECK_INT(with_payload_text("e30xx", err), ANVIL_JWT_REJECTED);         /* len%4==1 */
    CHECK_INT(with_payload_text("e3!0", err), ANVIL_JWT_REJECTED);
    CHECK_INT(with_payload_text("WzFd", err), ANVIL_JWT_REJECTED);          /* [1] */
    CHECK_STR(err, "Malformed token payload");
    CHECK_INT(with_payload_text("bm90LWpzb24", err), ANVIL_JWT_REJECTED);   /* not-json */
    CHECK_INT(with_payload_text("e314", err), ANVIL_JWT_REJECTED);          /* {}x */
    char *nul = b64url("{}\0{}", 5);                                        /* embedded NUL */
    CHECK_INT(with_payload_text(nul, err), ANVIL_JWT_REJECTED);
    free(nul);
    CHECK_INT(with_payload_text("", err), ANVIL_JWT_REJECTED);
}

static void test_limits(void)
{
    char err[128];
    bool expired;
    cJSON *payload = (cJSON *)1;

    /* A valid token padded with a huge ignored claim past the bound. */
    size_t big = ANVIL_JWT_MAX_TOKEN;
    char *claim = malloc(big + 32);
    snprintf(claim, big + 32, "{\"pad\":\"%0*d\"}", (int)big, 0);
    char *tok = anvil_jwt_sign_hs256(claim, SECRET);
    CHECK(tok && strlen(tok) > ANVIL_JWT_MAX_TOKEN);
    CHECK_INT(plain(tok, err), ANVIL_JWT_REJECTED);
    CHECK_STR(err, "Token too large");
    free(tok);
    free(claim);

    /* Exactly at the bound it is read, and fails for what it is instead. */
    char *edge = malloc(ANVIL_JWT_MAX_TOKEN + 1);
    memset(edge, 'A', ANVIL_JWT_MAX_TOKEN);
    edge[ANVIL_JWT_MAX_TOKEN] = '\0';
    CHECK_INT(plain(edge, err), ANVIL_JWT_REJECTED);
    CHECK_STR(err, "Malformed token");
    free(edge);

    tok = anvil_jwt_sign_hs256("{}", SECRET);
    CHECK_INT(anvil_jwt_verify_hs256(tok, NULL, NOW, 0, NULL, NULL, &payload, err, sizeof err,
                                     &expired), ANVIL_JWT_ERROR);
    CHECK(payload == NULL);
    CHECK_INT(anvil_jwt_verify_hs256(tok, "", NOW, 0, NULL, NULL, &payload, err, sizeof err,
                                     &expired), ANVIL_JWT_ERROR);
    CHECK_INT(anvil_jwt_verify_hs256(tok, SECRET, NOW, 0, NULL, NULL, NULL, err, sizeof err,
                                     &expired), ANVIL_JWT_ERROR);
    CHECK_INT(anvil_jwt_verify_hs256(NULL, SECRET, NOW, 0, NULL, NULL, &payload, err,
                                     sizeof err, &expired), ANVIL_JWT_REJECTED);
    /* err and expired are optional. */
    CHECK_INT(anvil_jwt_verify_hs256(tok, SECRET, NOW, 0, NULL, NULL, &payload, NULL, 0, NULL),
              ANVIL_JWT_OK);
    cJSON_Delete(payload);
    free(tok);
}

int main(void)
{
    test_outside_token();
    test_sign_roundtrip();
    test_tampering();
    test_algorithms();
    test_issuer_audience();
    test_times();
    test_malformed();
    test_limits();
    UNIT_DONE();
}
