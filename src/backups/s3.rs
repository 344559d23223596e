//! The optional off-site destination: an S3-compatible bucket that holds a second restic
//! repository, a copy of the local one (`restic` speaks S3 itself; see `restic.rs`).
//!
//! Owns: the destination's settings (parsed from the configuration, the secret key kept as a
//! [`Secret`]) and the "test" action, which really writes, reads back and deletes one small
//! object with plain signed requests (`sigv4`), and says what to do when a step fails. Does
//! not own: what a backup run copies there (`backups`).

use std::time::Duration;

use rand::Rng;

use super::sigv4;
use crate::model::Secret;

/// Where the off-site copy goes, validated.
#[derive(Clone)]
pub struct S3Settings {
    /// `scheme://host[:port]`, no path.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// Inside the bucket, no slash at either end; may be empty.
    pub prefix: String,
    pub access_key: String,
    pub secret_key: Secret,
    /// Bucket in the path (`endpoint/bucket/…`) rather than in the host name
    /// (`bucket.host/…`): what most servers other than AWS need.
    pub path_style: bool,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("destination", &self.describe())
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("secret_key", &self.secret_key)
            .field("path_style", &self.path_style)
            .finish()
    }
}

impl S3Settings {
    /// The repository as restic names it: `s3:https://host/bucket/prefix`.
    pub fn repository(&self) -> String {
        format!("s3:{}", self.describe())
    }

    /// `https://host/bucket/prefix`: what a message names (no credential is in it).
    pub fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("{}/{}", self.endpoint, self.bucket)
        } else {
            format!("{}/{}/{}", self.endpoint, self.bucket, self.prefix)
        }
    }

    /// The URL of object `key` (under the prefix), and the `Host` it is sent with.
    fn object(&self, key: &str) -> Result<(url::Url, String), String> {
        let name = if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        };
        let base = url::Url::parse(&self.endpoint).map_err(|e| e.to_string())?;
        let url = if self.path_style {
            base.join(&format!("/{}/{name}", self.bucket))
        } else {
            let host = format!("{}.{}", self.bucket, base.host_str().unwrap_or_default());
            let mut url = base.clone();
            url.set_host(Some(&host)).map_err(|e| e.to_string())?;
            url.join(&format!("/{name}"))
        }
        .map_err(|e| e.to_string())?;
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        Ok((url, host))
    }
}

/// `backup_s3_endpoint`: an `http://` or `https://` URL of the server, without a path.
pub fn parse_endpoint(v: &str) -> Result<String, String> {
    let example = "e.g. https://s3.eu-central-1.amazonaws.com";
    let url = url::Url::parse(v).map_err(|e| format!("not a URL ({e}); {example}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("expected an http:// or https:// URL, {example}"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not hold credentials: set backup_s3_access_key and backup_s3_secret_key".into(),
        );
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() {
        return Err("expected the server's URL alone: the bucket goes in backup_s3_bucket, the path in backup_s3_prefix".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// `backup_s3_bucket`: an S3 bucket name (3 to 63 of a-z, 0-9, '.', '-').
pub fn parse_bucket(v: &str) -> Result<String, String> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if (3..=63).contains(&v.len())
        && v.chars().all(ok_char)
        && edge(v.chars().next())
        && edge(v.chars().last())
    {
        Ok(v.to_owned())
    } else {
        Err("expected a bucket name: 3 to 63 of a-z, 0-9, '.' and '-', starting and ending with a letter or digit".into())
    }
}

/// `backup_s3_prefix`: a path inside the bucket (slashes at either end are dropped).
pub fn parse_prefix(v: &str) -> Result<String, String> {
    let v = v.trim_matches('/');
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/');
    if v.is_empty()
        || v.chars().all(ok_char) && !v.split('/').any(|s| s.is_empty() || s == "." || s == "..")
    {
        Ok(v.to_owned())
    } else {
        Err("expected a path of a-z, A-Z, 0-9, '.', '_', '-' and '/', e.g. minicloud/box1".into())
    }
}

/// `backup_s3_region`, e.g. `us-east-1`.
pub fn parse_region(v: &str) -> Result<String, String> {
    if !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Ok(v.to_owned())
    } else {
        Err("expected a region name, e.g. us-east-1".into())
    }
}

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

    fn settings(path_style: bool, prefix: &str) -> S3Settings {
        S3Settings {
            endpoint: parse_endpoint("http://127.0.0.1:9000/").unwrap(),
            region: "us-east-1".into(),
            bucket: "backups".into(),
            prefix: parse_prefix(prefix).unwrap(),
            access_key: "AK".into(),
            secret_key: Secret::new("very-secret"),
            path_style,
        }
    }

    #[test]
    fn names_the_repository_and_objects_either_style() {
        let s = settings(true, "/box1/");
        assert_eq!(s.repository(), "s3:http://127.0.0.1:9000/backups/box1");
        let (url, host) = s.object("k").unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9000/backups/box1/k");
        assert_eq!(host, "127.0.0.1:9000");
        let s = S3Settings {
            endpoint: parse_endpoint("https://s3.example.com").unwrap(),
            ..settings(false, "")
        };
        assert_eq!(s.describe(), "https://s3.example.com/backups");
        let (url, host) = s.object("k").unwrap();
        assert_eq!(url.as_str(), "https://backups.s3.example.com/k");
        assert_eq!(host, "backups.s3.example.com");
        assert!(!format!("{s:?}").contains("very-secret"));
    }

    #[test]
    fn refuses_what_restic_or_s3_would_misread() {
        assert!(parse_endpoint("s3.example.com").is_err());
        assert!(parse_endpoint("https://k:s@s3.example.com").is_err());
        assert!(parse_endpoint("https://s3.example.com/bucket").is_err());
        assert!(parse_bucket("My_Bucket").is_err());
        assert!(parse_bucket("ab").is_err());
        assert!(parse_prefix("a/../b").is_err());
        assert!(parse_prefix("a b").is_err());
        assert_eq!(parse_prefix("").unwrap(), "");
        assert!(parse_region("").is_err());
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
