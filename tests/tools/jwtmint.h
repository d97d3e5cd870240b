/*
 * jwtmint: the issuer's side of lib/jwt, for tests and tools only (never linked into a
 * service): key pairs, their public JWKs, and signed compact JWS tokens, all on OpenSSL.
 * Signing here is deliberately independent of lib/jwks (it shares only lib/b64url), so a
 * verifier bug is not mirrored by a signer bug.
 *
 * Ownership: every char* returned is malloc'd and freed by the caller; json_t* are new
 * references. Not thread-safe per key.
 */
#ifndef FERMATA_JWTMINT_H
#define FERMATA_JWTMINT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct jwtmint_key jwtmint_key;

/* alg "RS256" (RSA, bits 2048 when 0) or "ES256" (P-256; bits ignored). NULL on error. */
jwtmint_key *jwtmint_keygen(const char *alg, int bits);
/* A PEM private key (PKCS#8 or traditional); its alg follows from the key type. */
jwtmint_key *jwtmint_key_load(const char *path);
/* Writes the private key as PKCS#8 PEM, mode 0600. 0 or -1. */
int jwtmint_key_save(const jwtmint_key *k, const char *path);
void jwtmint_key_free(jwtmint_key *k);
const char *jwtmint_key_alg(const jwtmint_key *k);

/* The public key as SubjectPublicKeyInfo PEM (NUL-terminated), or NULL. */
char *jwtmint_public_pem(const jwtmint_key *k);

/* The public JWK (kty, kid when not NULL, use "sig", alg when with_alg, n/e or crv/x/y). */
json_t *jwtmint_jwk(const jwtmint_key *k, const char *kid, bool with_alg);

/* Base64url of data. */
char *jwtmint_b64(const void *data, size_t len);

/* Signs data with SHA-256. ES256 gives the JWS raw r||s unless der is true (a DER
 * signature, which verifiers must refuse). 0 with *sig malloc'd, or -1. */
int jwtmint_sign(const jwtmint_key *k, const void *data, size_t len, bool der, unsigned char **sig, size_t *sig_len);

/* "b64(header).b64(payload).b64(signature)" from JSON texts, signed with k; k NULL leaves
 * the signature empty (an unsecured JWS). NULL on error. */
char *jwtmint_token(const jwtmint_key *k, const char *header_json, const char *payload_json, bool der);

/* Same, with the signature given (for forged tokens). */
char *jwtmint_token_with_sig(const char *header_json, const char *payload_json, const unsigned char *sig,
                             size_t sig_len);

#endif
