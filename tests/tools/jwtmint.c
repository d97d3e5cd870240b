/* jwtmint: key generation with EVP_PKEY_Q_keygen, public parameters read back with
 * EVP_PKEY_get_bn_param / get_octet_string_param, signatures with EVP_DigestSign; ES256
 * signatures are converted from OpenSSL's DER to the fixed-size r||s of RFC 7518 3.4. */
#include "jwtmint.h"

#include "b64url/b64url.h"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct jwtmint_key {
  EVP_PKEY *pkey;
  bool ec;
};

static jwtmint_key *wrap(EVP_PKEY *pkey) {
  if (pkey == NULL) return NULL;
  int id = EVP_PKEY_get_base_id(pkey);
  if (id != EVP_PKEY_RSA && id != EVP_PKEY_EC) {
    EVP_PKEY_free(pkey);
    return NULL;
  }
  jwtmint_key *k = calloc(1, sizeof *k);
  if (k == NULL) {
    EVP_PKEY_free(pkey);
    return NULL;
  }
  k->pkey = pkey;
  k->ec = id == EVP_PKEY_EC;
  return k;
}

jwtmint_key *jwtmint_keygen(const char *alg, int bits) {
  if (strcmp(alg, "RS256") == 0) return wrap(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)(bits ? bits : 2048)));
  if (strcmp(alg, "ES256") == 0) return wrap(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
  return NULL;
}

jwtmint_key *jwtmint_key_load(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return NULL;
  EVP_PKEY *pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
  fclose(f);
  return wrap(pkey);
}

int jwtmint_key_save(const jwtmint_key *k, const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return -1;
  FILE *f = fdopen(fd, "w");
  if (f == NULL) {
    close(fd);
    return -1;
  }
  int ok = PEM_write_PrivateKey(f, k->pkey, NULL, NULL, 0, NULL, NULL);
  return fclose(f) == 0 && ok == 1 ? 0 : -1;
}

void jwtmint_key_free(jwtmint_key *k) {
  if (k == NULL) return;
  EVP_PKEY_free(k->pkey);
  free(k);
}

const char *jwtmint_key_alg(const jwtmint_key *k) { return k->ec ? "ES256" : "RS256"; }

char *jwtmint_public_pem(const jwtmint_key *k) {
  BIO *mem = BIO_new(BIO_s_mem());
  char *out = NULL, *data = NULL;
  long len;
  if (mem != NULL && PEM_write_bio_PUBKEY(mem, k->pkey) == 1 && (len = BIO_get_mem_data(mem, &data)) > 0 &&
      (out = malloc((size_t)len + 1)) != NULL) {
    memcpy(out, data, (size_t)len);
    out[len] = '\0';
  }
  BIO_free(mem);
  return out;
}

char *jwtmint_b64(const void *data, size_t len) {
  size_t cap = b64url_encoded_len(len) + 1;
  char *out = malloc(cap);
  if (out && b64url_encode(data, len, out, cap, NULL) != 0) {
    free(out);
    out = NULL;
  }
  return out;
}

/* base64url of a BIGNUM parameter, big-endian, padded to width bytes (0: minimal). */
static char *bn_param_b64(const EVP_PKEY *pkey, const char *name, int width) {
  BIGNUM *bn = NULL;
  char *out = NULL;
  if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1) return NULL;
  int n = width ? width : BN_num_bytes(bn);
  unsigned char *buf = malloc((size_t)n);
  if (buf && BN_bn2binpad(bn, buf, n) == n) out = jwtmint_b64(buf, (size_t)n);
  free(buf);
  BN_free(bn);
  return out;
}

json_t *jwtmint_jwk(const jwtmint_key *k, const char *kid, bool with_alg) {
  json_t *j = json_object();
  char *a = NULL, *b = NULL;
  if (k->ec) {
    a = bn_param_b64(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, 32);
    b = bn_param_b64(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
    json_object_set_new(j, "kty", json_string("EC"));
    json_object_set_new(j, "crv", json_string("P-256"));
    if (a) json_object_set_new(j, "x", json_string(a));
    if (b) json_object_set_new(j, "y", json_string(b));
  } else {
    a = bn_param_b64(k->pkey, OSSL_PKEY_PARAM_RSA_N, 0);
    b = bn_param_b64(k->pkey, OSSL_PKEY_PARAM_RSA_E, 0);
    json_object_set_new(j, "kty", json_string("RSA"));
    if (a) json_object_set_new(j, "n", json_string(a));
    if (b) json_object_set_new(j, "e", json_string(b));
  }
  if (kid) json_object_set_new(j, "kid", json_string(kid));
  json_object_set_new(j, "use", json_string("sig"));
  if (with_alg) json_object_set_new(j, "alg", json_string(jwtmint_key_alg(k)));
  bool ok = a != NULL && b != NULL;
  free(a);
  free(b);
  if (!ok) {
    json_decref(j);
    return NULL;
  }
  return j;
}

/* DER ECDSA-Sig-Value to r||s, 32 bytes each. */
static int der_to_raw(const unsigned char *der, size_t len, unsigned char raw[64]) {
  const unsigned char *p = der;
  ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)len);
  if (s == NULL) return -1;
  int ok = BN_bn2binpad(ECDSA_SIG_get0_r(s), raw, 32) == 32 && BN_bn2binpad(ECDSA_SIG_get0_s(s), raw + 32, 32) == 32;
  ECDSA_SIG_free(s);
  return ok ? 0 : -1;
}

int jwtmint_sign(const jwtmint_key *k, const void *data, size_t len, bool der, unsigned char **sig, size_t *sig_len) {
  *sig = NULL;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  size_t n = 0;
  unsigned char *buf = NULL;
  int rc = -1;
  if (md == NULL || EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, k->pkey, NULL) != 1 ||
      EVP_DigestSign(md, NULL, &n, data, len) != 1 || (buf = malloc(n)) == NULL ||
      EVP_DigestSign(md, buf, &n, data, len) != 1)
    goto done;
  if (k->ec && !der) {
    unsigned char *raw = malloc(64);
    if (raw == NULL || der_to_raw(buf, n, raw) != 0) {
      free(raw);
      goto done;
    }
    free(buf);
    buf = raw;
    n = 64;
  }
  *sig = buf;
  *sig_len = n;
  buf = NULL;
  rc = 0;
done:
  free(buf);
  EVP_MD_CTX_free(md);
  return rc;
}

static char *signing_input(const char *header_json, const char *payload_json) {
  char *h = jwtmint_b64(header_json, strlen(header_json));
  char *p = jwtmint_b64(payload_json, strlen(payload_json));
  char *out = NULL;
  size_t n = h && p ? strlen(h) + strlen(p) + 2 : 0;
  if (n && (out = malloc(n)) != NULL) snprintf(out, n, "%s.%s", h, p);
  free(h);
  free(p);
  return out;
}

static char *append_sig(char *input, const unsigned char *sig, size_t sig_len) {
  char *s = jwtmint_b64(sig, sig_len);
  char *out = NULL;
  size_t n = input && s ? strlen(input) + strlen(s) + 2 : 0;
  if (n && (out = malloc(n)) != NULL) snprintf(out, n, "%s.%s", input, s);
  free(s);
  free(input);
  return out;
}

char *jwtmint_token(const jwtmint_key *k, const char *header_json, const char *payload_json, bool der) {
  char *input = signing_input(header_json, payload_json);
  unsigned char *sig = NULL;
  size_t sig_len = 0;
  if (input == NULL || (k && jwtmint_sign(k, input, strlen(input), der, &sig, &sig_len) != 0)) {
    free(input);
    return NULL;
  }
  char *out = append_sig(input, sig, sig_len);
  free(sig);
  return out;
}

char *jwtmint_token_with_sig(const char *header_json, const char *payload_json, const unsigned char *sig,
                             size_t sig_len) {
  return append_sig(signing_input(header_json, payload_json), sig, sig_len);
}
