#!/usr/bin/env python3
"""s3sign.py: AWS SigV4 headers for one S3 request, for clients that cannot sign (wrk).

    s3sign.py METHOD URL [BODY_FILE]   -> prints "Name: value" lines, one header each

versitygw (the object store of the local stack) refuses unsigned requests, so the raw
object-store ceilings in bench/run-all.sh send the same signed headers on every request
to one URL: a signature stays valid for 15 minutes and the store does not check replays. The payload hash is the real SHA-256 of BODY_FILE, as lib/s3 sends it
for in-memory bodies. Credentials and region: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
S3_REGION (test/test/us-east-1, the local stack's).
"""
import datetime
import hashlib
import hmac
import os
import sys
import urllib.parse


def sign(method, url, payload_hash, region, key_id, secret, now=None):
    u = urllib.parse.urlsplit(url)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    host = u.netloc
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join([
        method, u.path or "/", u.query,
        "".join("%s:%s\n" % (k, headers[k]) for k in sorted(headers)),
        signed, payload_hash])
    scope = "%s/%s/s3/aws4_request" % (day, region)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (day, region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "Authorization": "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                         % (key_id, scope, signed, sig),
        "x-amz-date": amz_date,
        "x-amz-content-sha256": payload_hash,
    }


def main():
    method, url = sys.argv[1], sys.argv[2]
    body = open(sys.argv[3], "rb").read() if len(sys.argv) > 3 else b""
    h = sign(method, url, hashlib.sha256(body).hexdigest(),
             os.environ.get("S3_REGION", "us-east-1"),
             os.environ.get("AWS_ACCESS_KEY_ID", "test"),
             os.environ.get("AWS_SECRET_ACCESS_KEY", "test"))
    for k, v in h.items():
        print("%s: %s" % (k, v))


if __name__ == "__main__":
    main()
