//! The optional off-site destination: an S3-compatible bucket that holds a second restic
//! repository, a copy of the local one (`restic` speaks S3 itself; see `restic.rs`).
//!
//! Owns: the "test" action, which really writes, reads back and deletes one small object with
//! plain signed requests (`sigv4`), and says what to do when a step fails. Does not own: the
//! settings (`config::s3`, validated there), what a backup run copies there (`offsite`).

use std::time::Duration;

use rand::Rng;

use super::sigv4;
pub use crate::config::s3::S3Settings;

/// One step of the test, as the answer shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CheckStep {
    /// `write`, `read`, `delete` or `repository`.
    pub step: String,
    pub ok: bool,
    pub detail: String,
}

/// What the test found: every step tried, and what to do about the first that failed.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct S3Check {
    pub ok: bool,
    /// `https://host/bucket/prefix`.
    pub destination: String,
    pub steps: Vec<CheckStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
}

impl S3Check {
    pub(super) fn passed(&mut self, step: &str, detail: impl Into<String>) {
        self.steps.push(CheckStep {
            step: step.into(),
            ok: true,
            detail: detail.into(),
        });
    }

    pub(super) fn failed(&mut self, step: &str, detail: impl Into<String>, advice: String) {
        self.ok = false;
        self.steps.push(CheckStep {
            step: step.into(),
            ok: false,
            detail: detail.into(),
        });
        self.advice.get_or_insert(advice);
    }
}

/// A step's failure: what happened, and what to do.
struct Failure {
    detail: String,
    advice: String,
}

/// Writes one small object under the prefix, reads it back, compares, deletes it.
pub async fn check_objects(s3: &S3Settings) -> S3Check {
    let mut check = S3Check {
        ok: true,
        destination: s3.describe(),
        steps: Vec::new(),
        advice: None,
    };
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            check.failed("write", e.to_string(), "see minicloud's log".into());
            return check;
        }
    };
    let key = format!("minicloud-s3-test-{:016x}", rand::rng().random::<u64>());
    let body = format!("minicloud S3 test object {key}\n").into_bytes();
    let object = |what| format!("{what} {}/{key}", s3.describe());

    match request(&client, s3, "PUT", &key, body.clone()).await {
        Ok(_) => check.passed("write", object("wrote")),
        Err(f) => {
            check.failed("write", f.detail, f.advice);
            return check;
        }
    }
    match request(&client, s3, "GET", &key, Vec::new()).await {
        Ok(read) if read == body => check.passed("read", object("read back the same bytes of")),
        Ok(read) => check.failed(
            "read",
            format!(
                "read back {} bytes that differ from the {} written",
                read.len(),
                body.len()
            ),
            "the server does not give back what it was given: check that the endpoint is an S3 server, not a proxy or cache in front of one".into(),
        ),
        Err(f) => check.failed("read", f.detail, f.advice),
    }
    // Deleted whatever the read found, so a failed test leaves nothing behind.
    match request(&client, s3, "DELETE", &key, Vec::new()).await {
        Ok(_) => check.passed("delete", object("deleted")),
        Err(f) => check.failed("delete", f.detail, f.advice),
    }
    check
}

/// One signed request; the body of a 2xx answer, or what failed and what to do.
async fn request(
    client: &reqwest::Client,
    s3: &S3Settings,
    method: &'static str,
    key: &str,
    body: Vec<u8>,
) -> Result<Vec<u8>, Failure> {
    let (url, host) = s3.object(key).map_err(|e| Failure {
        detail: format!("no URL for the object: {e}"),
        advice: "check backup_s3_endpoint and backup_s3_bucket".into(),
    })?;
    let hash = sigv4::payload_hash(&body);
    let amz_date = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default();
    let authorization = sigv4::authorization(&sigv4::Request {
        method,
        path: url.path(),
        host: &host,
        headers: &[],
        payload_hash: &hash,
        amz_date: &amz_date,
        region: &s3.region,
        access_key: &s3.access_key,
        secret_key: s3.secret_key.expose(),
    });
    let method_ = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let sent = client
        .request(method_, url.clone())
        .header("x-amz-date", &amz_date)
        .header("x-amz-content-sha256", &hash)
        .header("authorization", authorization)
        .body(body)
        .send()
        .await;
    let endpoint = &s3.endpoint;
    let response = sent.map_err(|e| {
        let why = if e.is_timeout() {
            "no answer within 20 s".to_owned()
        } else if e.is_connect() {
            format!("cannot connect: {}", root_cause(&e))
        } else {
            root_cause(&e)
        };
        Failure {
            detail: format!("{method} {url}: {why}"),
            advice: format!(
                "check backup_s3_endpoint ({endpoint}): its scheme, host and port, and that this server can reach it"
            ),
        }
    })?;
    let status = response.status();
    let text = response
        .bytes()
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    if status.is_success() {
        return Ok(text);
    }
    let body = String::from_utf8_lossy(&text);
    let code = xml_field(&body, "Code").unwrap_or_default();
    let message = xml_field(&body, "Message").unwrap_or_default();
    Err(Failure {
        detail: format!("{method} {url}: {status} {code} {message}")
            .trim_end()
            .to_owned(),
        advice: advice(s3, status.as_u16(), &code, &body),
    })
}

/// What to do about an S3 error answer.
fn advice(s3: &S3Settings, status: u16, code: &str, body: &str) -> String {
    let bucket = &s3.bucket;
    match code {
        "InvalidAccessKeyId" | "InvalidClientTokenId" => {
            "the server does not know this access key: check backup_s3_access_key".into()
        }
        "SignatureDoesNotMatch" => "the secret key does not belong to the access key: check backup_s3_secret_key (and backup_s3_region)".into(),
        "NoSuchBucket" => format!(
            "bucket {bucket} does not exist: create it (the first backup also tries to), or check backup_s3_bucket"
        ),
        "AuthorizationHeaderMalformed" | "PermanentRedirect" | "IllegalLocationConstraintException" => {
            match xml_field(body, "Region") {
                Some(region) => format!("the bucket is in region {region}: set backup_s3_region={region}"),
                None => "the bucket is in another region or behind another endpoint: check backup_s3_region and backup_s3_endpoint".into(),
            }
        }
        "AccessDenied" => format!(
            "the key may not use bucket {bucket}: allow it s3:PutObject, s3:GetObject, s3:DeleteObject and s3:ListBucket there"
        ),
        _ if status == 404 || status == 400 && !s3.path_style => "the server may not support bucket names in the host name: try backup_s3_path_style=true".into(),
        _ if status == 403 => "the server refused the key: check backup_s3_access_key, backup_s3_secret_key and the key's permissions on the bucket".into(),
        _ => format!("the server answered {status}: see its message above and the provider's documentation"),
    }
}

/// The text of the first `<field>` element of an S3 XML error, if any.
fn xml_field(xml: &str, field: &str) -> Option<String> {
    let open = format!("<{field}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{field}>"))?;
    Some(xml[start..end].trim().to_owned())
}

/// The innermost error's text: reqwest's own says only "error sending request".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(source) = inner.source() {
        inner = source;
    }
    inner.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::s3::parse_endpoint;
    use crate::model::Secret;

    fn settings(path_style: bool, prefix: &str) -> S3Settings {
        S3Settings {
            endpoint: parse_endpoint("http://127.0.0.1:9000/").unwrap(),
            region: "us-east-1".into(),
            bucket: "backups".into(),
            prefix: prefix.into(),
            access_key: "AK".into(),
            secret_key: Secret::new("very-secret"),
            path_style,
        }
    }

    #[test]
    fn advice_follows_the_error_code() {
        let s = settings(true, "p");
        assert!(advice(&s, 403, "InvalidAccessKeyId", "").contains("backup_s3_access_key"));
        assert!(advice(&s, 403, "SignatureDoesNotMatch", "").contains("backup_s3_secret_key"));
        let body =
            "<Error><Code>AuthorizationHeaderMalformed</Code><Region>eu-west-1</Region></Error>";
        assert!(advice(&s, 400, "AuthorizationHeaderMalformed", body)
            .contains("backup_s3_region=eu-west-1"));
        assert_eq!(
            xml_field(body, "Code").unwrap(),
            "AuthorizationHeaderMalformed"
        );
    }
}
