/*
 * jwt_tool: a local token issuer for tests and scripts (never for production): makes key
 * pairs, writes their JWK Set, and mints signed tokens, with tests/tools/jwtmint.
 *
 *   jwt_tool keygen --key FILE --jwks FILE [--alg RS256|ES256] [--kid KID] [--append]
 *       new key pair: the private key as PKCS#8 PEM (mode 0600) and a JWK Set with its
 *       public key. --append adds the key to an existing JWK Set instead (rotation); a key
 *       with the same kid there is replaced.
 *   jwt_tool jwks --key FILE [--kid KID]
 *       prints the JWK Set of an existing private key.
 *   jwt_tool mint --key FILE --iss ISS --aud AUD [--aud AUD...] [--kid KID] [--scope S]
 *                 [--scp] [--sub SUB] [--ttl SECONDS | --exp EPOCH] [--nbf EPOCH]
 *                 [--iat EPOCH] [--alg ALG]
 *       prints a compact JWS. --scope is space-separated ("fermata.read fermata.write");
 *       --scp puts the scopes in an "scp" array instead. Defaults: kid "test-key", sub
 *       "fermata-test", ttl 300, iat now. --alg writes another alg into the header (the
 *       signature is still the key's), for negative tests.
 *   jwt_tool verify --jwks FILE --iss ISS --aud AUD [--need SCOPE...] [--token TOKEN]
 *       verifies a token (from --token, or the first line of stdin) with lib/jwt against
 *       a JWK Set file and prints {"status":..,"error":..,"www_authenticate":..,"sub":..,
 *       "scopes":[..]}; --need names a required scope (fermata.read, fermata.write,
 *       fermata.admin). Exit status 0 when the status is 200, 1 otherwise.
 *
 * Exit status 0 on success, 2 on a usage or I/O error (with a message on stderr).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jwt/jwt.h"
#include "jwtmint.h"

#define MAX_AUD 8

typedef struct opts {
  const char *key, *jwks, *alg, *kid, *iss, *scope, *sub, *header_alg;
  const char *aud[MAX_AUD];
  const char *token;
  unsigned need;
  int n_aud;
  bool append, scp, has_exp, has_nbf, has_iat;
  long long ttl, exp, nbf, iat;
} opts;

static int usage(const char *msg) {
  fprintf(stderr,
          "jwt_tool: %s\n"
          "usage: jwt_tool keygen --key FILE --jwks FILE [--alg RS256|ES256] [--kid KID] [--append]\n"
          "       jwt_tool jwks --key FILE [--kid KID]\n"
          "       jwt_tool mint --key FILE --iss ISS --aud AUD [--kid KID] [--scope S] [--scp]\n"
          "                     [--sub SUB] [--ttl N | --exp EPOCH] [--nbf EPOCH] [--iat EPOCH] [--alg ALG]\n"
          "       jwt_tool verify --jwks FILE --iss ISS --aud AUD [--need SCOPE...] [--token TOKEN]\n",
          msg);
  return 2;
}

static bool parse_ll(const char *s, long long *out) {
  char *end;
  errno = 0;
  *out = strtoll(s, &end, 10);
  return errno == 0 && end != s && *end == '\0';
}

/* Adds (or replaces, by kid) the key's JWK in the JWK Set at path; creates the file when
 * append is false. */
static int write_jwks(const jwtmint_key *k, const char *kid, const char *path, bool append) {
  json_t *doc = NULL;
  if (append) {
    json_error_t e;
    doc = json_load_file(path, 0, &e);
    if (!json_is_array(json_object_get(doc, "keys"))) {
      fprintf(stderr, "jwt_tool: %s is not a JWK Set\n", path);
      json_decref(doc);
      return 2;
    }
  } else {
    doc = json_pack("{s:[]}", "keys");
  }
  json_t *keys = json_object_get(doc, "keys");
  for (size_t i = json_array_size(keys); i-- > 0;) {
    const char *other = json_string_value(json_object_get(json_array_get(keys, i), "kid"));
    if (other && strcmp(other, kid) == 0) json_array_remove(keys, i);
  }
  json_array_append_new(keys, jwtmint_jwk(k, kid, true));
  int rc = json_dump_file(doc, path, JSON_INDENT(2)) == 0 ? 0 : 2;
  if (rc) fprintf(stderr, "jwt_tool: cannot write %s\n", path);
  json_decref(doc);
  return rc;
}

static int cmd_keygen(const opts *o) {
  if (!o->key || !o->jwks) return usage("keygen needs --key and --jwks");
  jwtmint_key *k = jwtmint_keygen(o->alg ? o->alg : "RS256", 2048);
  if (k == NULL) return usage("--alg must be RS256 or ES256");
  int rc = 0;
  if (jwtmint_key_save(k, o->key) != 0) {
    fprintf(stderr, "jwt_tool: cannot write %s\n", o->key);
    rc = 2;
  }
  if (rc == 0) rc = write_jwks(k, o->kid, o->jwks, o->append);
  jwtmint_key_free(k);
  return rc;
}

static jwtmint_key *load(const char *path) {
  jwtmint_key *k = jwtmint_key_load(path);
  if (k == NULL) fprintf(stderr, "jwt_tool: %s holds no RSA or EC private key\n", path);
  return k;
}

static int cmd_jwks(const opts *o) {
  if (!o->key) return usage("jwks needs --key");
  jwtmint_key *k = load(o->key);
  if (k == NULL) return 2;
  json_t *doc = json_pack("{s:[o]}", "keys", jwtmint_jwk(k, o->kid, true));
  char *s = json_dumps(doc, JSON_INDENT(2));
  printf("%s\n", s);
  free(s);
  json_decref(doc);
  jwtmint_key_free(k);
  return 0;
}

static json_t *scp_array(const char *scope) {
  json_t *arr = json_array();
  char *copy = strdup(scope), *save = NULL;
  for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
    json_array_append_new(arr, json_string(t));
  free(copy);
  return arr;
}

static int cmd_mint(const opts *o) {
  if (!o->key || !o->iss || o->n_aud == 0) return usage("mint needs --key, --iss and --aud");
  jwtmint_key *k = load(o->key);
  if (k == NULL) return 2;
  long long now = (long long)time(NULL);
  json_t *c =
      json_pack("{s:s,s:s,s:I,s:I}", "iss", o->iss, "sub", o->sub, "exp",
                (json_int_t)(o->has_exp ? o->exp : now + o->ttl), "iat", (json_int_t)(o->has_iat ? o->iat : now));
  if (o->n_aud == 1) {
    json_object_set_new(c, "aud", json_string(o->aud[0]));
  } else {
    json_t *aud = json_array();
    for (int i = 0; i < o->n_aud; i++) json_array_append_new(aud, json_string(o->aud[i]));
    json_object_set_new(c, "aud", aud);
  }
  if (o->has_nbf) json_object_set_new(c, "nbf", json_integer((json_int_t)o->nbf));
  if (o->scope) json_object_set_new(c, o->scp ? "scp" : "scope", o->scp ? scp_array(o->scope) : json_string(o->scope));
  json_t *h = json_pack("{s:s,s:s,s:s}", "alg", o->header_alg ? o->header_alg : jwtmint_key_alg(k), "typ", "JWT", "kid",
                        o->kid);
  char *hs = json_dumps(h, JSON_COMPACT), *cs = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
  char *token = hs && cs ? jwtmint_token(k, hs, cs, false) : NULL;
  int rc = token ? 0 : 2;
  if (token)
    printf("%s\n", token);
  else
    fprintf(stderr, "jwt_tool: signing failed\n");
  free(token);
  free(hs);
  free(cs);
  json_decref(h);
  json_decref(c);
  jwtmint_key_free(k);
  return rc;
}

/* The jwks_fetch_fn of verify: the JWK Set file. */
static int fetch_file(void *ctx, jwks_fetched *out) {
  FILE *f = fopen(ctx, "r");
  if (f == NULL) return JWKS_ERR_FETCH;
  char *buf = malloc(JWKS_MAX_DOC_BYTES + 1);
  size_t n = buf ? fread(buf, 1, JWKS_MAX_DOC_BYTES + 1, f) : 0;
  fclose(f);
  if (buf == NULL || n > JWKS_MAX_DOC_BYTES) {
    free(buf);
    return JWKS_ERR_FETCH;
  }
  buf[n] = '\0';
  out->body = buf;
  out->len = n;
  return 0;
}

static int cmd_verify(const opts *o) {
  if (!o->jwks || !o->iss || o->n_aud == 0) return usage("verify needs --jwks, --iss and --aud");
  char line[JWT_MAX_TOKEN + 2] = "";
  const char *token = o->token;
  if (token == NULL) {
    if (fgets(line, sizeof line, stdin) == NULL) line[0] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    token = line;
  }
  jwks_cache_config kc = {.fetch = fetch_file, .fetch_ctx = (void *)o->jwks};
  jwks_cache *keys = NULL;
  jwt_config jc = {.issuer = o->iss, .audiences = o->aud, .n_audiences = (size_t)o->n_aud};
  jwt_verifier *v = NULL;
  if (jwks_cache_new(&kc, &keys) != 0 || jwt_verifier_new(&jc, keys, &v) != 0) {
    jwks_cache_free(keys);
    return usage("bad verifier configuration");
  }
  char auth[JWT_MAX_TOKEN + 16];
  snprintf(auth, sizeof auth, "Bearer %s", token);
  jwt_claims c;
  int err = jwt_authorize(v, token[0] ? auth : NULL, o->need, &c);
  char challenge[256];
  jwt_www_authenticate(err, o->need, challenge, sizeof challenge);
  json_t *scopes = json_array();
  for (unsigned bit = JWT_SCOPE_READ; bit <= JWT_SCOPE_ADMIN; bit <<= 1)
    if (c.scopes & bit) json_array_append_new(scopes, json_string(jwt_scope_name(bit)));
  json_t *out = json_pack("{s:i,s:s,s:s,s:s,s:o}", "status", jwt_http_status(err), "error", jwt_error_description(err),
                          "www_authenticate", challenge, "sub", c.subject, "scopes", scopes);
  char *s = json_dumps(out, JSON_COMPACT);
  printf("%s\n", s);
  free(s);
  json_decref(out);
  jwt_verifier_free(v);
  jwks_cache_free(keys);
  return err == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc < 2) return usage("no command");
  const char *cmd = argv[1];
  opts o = {.kid = "test-key", .sub = "fermata-test", .ttl = 300};
  static const struct option longopts[] = {
      {"key", required_argument, NULL, 'k'},
      {"jwks", required_argument, NULL, 'j'},
      {"alg", required_argument, NULL, 'a'},
      {"kid", required_argument, NULL, 'i'},
      {"append", no_argument, NULL, 'A'},
      {"iss", required_argument, NULL, 's'},
      {"aud", required_argument, NULL, 'u'},
      {"scope", required_argument, NULL, 'c'},
      {"scp", no_argument, NULL, 'C'},
      {"sub", required_argument, NULL, 'b'},
      {"ttl", required_argument, NULL, 't'},
      {"exp", required_argument, NULL, 'e'},
      {"nbf", required_argument, NULL, 'n'},
      {"iat", required_argument, NULL, 'I'},
      {"need", required_argument, NULL, 'N'},
      {"token", required_argument, NULL, 'T'},
      {NULL, 0, NULL, 0},
  };
  optind = 2;
  int ch;
  while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (ch) {
    case 'k': o.key = optarg; break;
    case 'j': o.jwks = optarg; break;
    case 'a': o.alg = o.header_alg = optarg; break;
    case 'i': o.kid = optarg; break;
    case 'A': o.append = true; break;
    case 's': o.iss = optarg; break;
    case 'u':
      if (o.n_aud == MAX_AUD) return usage("too many --aud");
      o.aud[o.n_aud++] = optarg;
      break;
    case 'c': o.scope = optarg; break;
    case 'C': o.scp = true; break;
    case 'b': o.sub = optarg; break;
    case 't':
      if (!parse_ll(optarg, &o.ttl)) return usage("--ttl needs seconds");
      break;
    case 'e':
      if (!(o.has_exp = parse_ll(optarg, &o.exp))) return usage("--exp needs an epoch");
      break;
    case 'n':
      if (!(o.has_nbf = parse_ll(optarg, &o.nbf))) return usage("--nbf needs an epoch");
      break;
    case 'I':
      if (!(o.has_iat = parse_ll(optarg, &o.iat))) return usage("--iat needs an epoch");
      break;
    case 'N': {
      unsigned bit = 0;
      for (unsigned b = JWT_SCOPE_READ; b <= JWT_SCOPE_ADMIN; b <<= 1)
        if (strcmp(optarg, jwt_scope_name(b)) == 0) bit = b;
      if (bit == 0) return usage("--need takes fermata.read, fermata.write or fermata.admin");
      o.need |= bit;
      break;
    }
    case 'T': o.token = optarg; break;
    default: return usage("unknown option");
    }
  }
  if (optind != argc) return usage("unexpected argument");
  if (strcmp(cmd, "keygen") == 0) return cmd_keygen(&o);
  if (strcmp(cmd, "jwks") == 0) return cmd_jwks(&o);
  if (strcmp(cmd, "mint") == 0) return cmd_mint(&o);
  if (strcmp(cmd, "verify") == 0) return cmd_verify(&o);
  return usage("unknown command");
}
