/* The fixture of tests/unit/jwt_test.c and jwt_rotation_test.c: four keys generated once
 * per group (RSA r1 and r2, an impostor RSA key that claims kid r1, P-256 e1), a JWK Set
 * served by a fake fetcher, fake monotonic and wall clocks, and a verifier for issuer ISS
 * and audiences "fermata" and "fermata-gateway". Tokens are signed by tests/tools/jwtmint. */
#ifndef FERMATA_JWT_FIXTURE_H
#define FERMATA_JWT_FIXTURE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "jwt/jwt.h"
#include "jwtmint.h"

#define ISS "https://issuer.fermata.test/realms/fermata"
#define NOW 1700000000LL

typedef struct fx {
  jwtmint_key *rsa, *rsa2, *evil, *ec; /* evil: another key that claims kid r1 */
  pthread_mutex_t mu;
  char *doc;
  atomic_int fetches; /* the fetch callback runs on whichever thread refreshes */
  int fetch_rc;
  atomic_llong mono, wall;
  jwks_cache *cache;
  jwt_verifier *v;
  jwt_claims claims;
} fx;

/* Serves a JWK Set of n (const jwtmint_key *, const char *kid) pairs. */
void serve(fx *f, size_t n, ...);

/* cmocka group and test fixtures: keys per group; cache and verifier per test, with the
 * default skew (setup) or none (setup_no_skew), the set {r1, e1} served, mono at 100 and
 * wall at NOW. */
int group_setup(void **state);
int group_teardown(void **state);
int setup(void **state);
int setup_no_skew(void **state);
int teardown(void **state);

/* The claims of a good token (iss, aud "fermata", sub "alice", scope read+write, exp
 * NOW+300, iat NOW) with `field` set to the JSON `value` (NULL: removed). Caller frees. */
char *claims_with(const char *field, const char *value);
/* {"alg":alg,"typ":"JWT","kid":kid}, kid left out when NULL. Caller frees. */
char *header(const char *alg, const char *kid);
/* A token signed by key under alg/kid, with one claim changed. Caller frees. */
char *token_with(const jwtmint_key *key, const char *alg, const char *kid, const char *field, const char *value);
/* A good RS256 token of r1. Caller frees. */
char *good(fx *f);
/* Verifies the token (into f->claims), frees it, returns the code. */
int check(fx *f, char *token);
/* check() of a good r1 token with one claim changed. */
int check_claim(fx *f, const char *field, const char *value);

#endif
