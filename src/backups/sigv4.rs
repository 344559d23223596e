//! AWS Signature Version 4 for the few plain S3 requests minicloud makes itself (the S3
//! test action: put, get, delete one object). Pure: the caller passes the time and the
//! payload's hash. restic signs its own requests; this is not used for backups.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The hash S3 expects in `x-amz-content-sha256` and in the canonical request.
pub fn payload_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// One request to sign.
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as sent, already percent-encoded (`/bucket/key`).
    pub path: &'a str,
    /// `host[:port]`, as the `Host` header carries it.
    pub host: &'a str,
    /// Other headers to sign besides `host`, `x-amz-content-sha256` and `x-amz-date`: names
    /// in lower case.
    pub headers: &'a [(&'a str, &'a str)],
    pub payload_hash: &'a str,
    /// `YYYYMMDDTHHMMSSZ`.
    pub amz_date: &'a str,
    pub region: &'a str,
    pub access_key: &'a str,
    pub secret_key: &'a str,
}

/// The `Authorization` header's value for `req` (service `s3`, empty query string).
pub fn authorization(req: &Request<'_>) -> String {
    let mut headers: Vec<(&str, &str)> = vec![
        ("host", req.host),
        ("x-amz-content-sha256", req.payload_hash),
        ("x-amz-date", req.amz_date),
    ];
    headers.extend_from_slice(req.headers);
    headers.sort_by(|a, b| a.0.cmp(b.0));
    let canonical_headers: String = headers
        .iter()
        .map(|(k, v)| format!("{k}:{}\n", v.trim()))
        .collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| *k)
        .collect::<Vec<_>>()
        .join(";");
    let canonical = format!(
        "{}\n{}\n\n{canonical_headers}\n{signed_headers}\n{}",
        req.method, req.path, req.payload_hash
    );
    let date = &req.amz_date[..req.amz_date.len().min(8)];
    let scope = format!("{date}/{}/s3/aws4_request", req.region);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        req.amz_date,
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(
        format!("AWS4{}", req.secret_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [req.region, "s3", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac(&key, to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        req.access_key
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The "GET Object" example of AWS's Signature Version 4 documentation for S3.
    #[test]
    fn signs_the_documented_example() {
        let empty = payload_hash(b"");
        assert_eq!(
            empty,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let auth = authorization(&Request {
            method: "GET",
            path: "/test.txt",
            host: "examplebucket.s3.amazonaws.com",
            headers: &[("range", "bytes=0-9")],
            payload_hash: &empty,
            amz_date: "20130524T000000Z",
            region: "us-east-1",
            access_key: "AKIAIOSFODNN7EXAMPLE",
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        });
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }
}
