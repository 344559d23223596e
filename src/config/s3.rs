//! The S3 destination's settings (`backup_s3_*`): validated here, once, so restic and the
//! test action get a URL, bucket and prefix they cannot misread. The secret key is a
//! [`Secret`]: `Debug` redacts it. What is done with them is `backups`' business.

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
    pub fn object(&self, key: &str) -> Result<(url::Url, String), String> {
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
}
