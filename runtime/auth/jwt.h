/*
 * runtime/auth/jwt.h — compact JWS tokens signed with HMAC-SHA256 (HS256).
 *
 * This module owns the token format only: splitting, base64url, the header's
 * alg, the signature, and the registered time/issuer/audience claims. It does
 * not know what the application claims (scope, role, sub) mean; auth.c maps
 * them onto a principal.
 *
 * Ownership: a verified payload is returned as a cJSON tree the caller frees
 * with cJSON_Delete; a signed token is a malloc'd string the caller frees.
 */
#ifndef ANVIL_JWT_H
#define ANVIL_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* Longer tokens are refused before any decoding, so the work and memory a
 * caller can make us spend on one request stay bounded. */
#define ANVIL_JWT_MAX_TOKEN 8192

typedef enum anvil_jwt_status {
    ANVIL_JWT_OK = 0,
    ANVIL_JWT_REJECTED,   /* the token is not acceptable; err says why */
    ANVIL_JWT_ERROR       /* we could not check it (no secret, OOM, OpenSSL) */
} anvil_jwt_status;

/*
 * Verify `token` against `secret`. iss / aud are checked when non-NULL (aud
 * matches a string claim or any string in an array claim). exp and nbf are
 * optional numeric claims in seconds, each given skew_s of slack.
 * On ANVIL_JWT_OK *payload_out holds the payload object. Otherwise it is
 * NULL, err holds a message, and *expired (when non-NULL) tells whether the
 * only problem is an elapsed exp, so the caller can suggest a refresh.
 */
anvil_jwt_status anvil_jwt_verify_hs256(const char *token, const char *secret,
                                        int64_t now_s, int64_t skew_s,
                                        const char *iss, const char *aud,
                                        cJSON **payload_out,
                                        char *err, size_t errlen,
                                        bool *expired);

/*
 * Sign payload_json (used byte for byte as the payload) with header
 * {"alg":"HS256","typ":"JWT"}. Returns a malloc'd token, or NULL when an
 * argument is NULL, the secret is empty, or memory or OpenSSL fails.
 */
char *anvil_jwt_sign_hs256(const char *payload_json, const char *secret);

#endif
