//! `minicloud certs …`: each host's certificate and its renewal, printed for people.

use super::error::CliError;
use super::table;
use super::view::CertView;
use super::{encode_segment, ApiClient};
use crate::model::format_time;

pub async fn list(api: &ApiClient) -> Result<(), CliError> {
    let certs: Vec<CertView> = api.get("/api/certificates").await?;
    let rows: Vec<Vec<String>> = certs.iter().map(row).collect();
    print!(
        "{}",
        table::render(&["host", "state", "expires", "next", "detail"], &rows)
    );
    Ok(())
}

pub async fn renew(api: &ApiClient, host: &str) -> Result<(), CliError> {
    let path = format!("/api/certificates/{}/renew", encode_segment(host));
    let _: CertView = api.post(&path, &serde_json::json!({})).await?;
    println!("renewal of {host} requested: see `minicloud certs list`");
    Ok(())
}

/// host, state, expires, next (retry or renewal), detail.
fn row(c: &CertView) -> Vec<String> {
    let time = |t: Option<i64>| t.map(format_time).unwrap_or_else(|| "-".into());
    let next = match c.state.as_str() {
        "failed" => format!("retry {}", time(c.next_retry)),
        _ if c.renew_at.is_some() => format!("renew {}", time(c.renew_at)),
        _ => "-".into(),
    };
    let detail = c
        .error
        .clone()
        .or_else(|| c.reason.clone())
        .unwrap_or_default();
    vec![
        c.host.clone(),
        c.state.clone(),
        time(c.not_after),
        next,
        detail,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(json: &str) -> CertView {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_failed_certificate_shows_its_retry_and_error() {
        let r = row(&view(
            r#"{"host":"a.test","state":"failed","next_retry":0,"error":"rate limited","renew_at":5}"#,
        ));
        assert_eq!(r[0], "a.test");
        assert_eq!(r[1], "failed");
        assert_eq!(r[2], "-");
        assert!(r[3].starts_with("retry "), "{r:?}");
        assert_eq!(r[4], "rate limited");
    }

    #[test]
    fn unknown_fields_and_states_are_shown_not_refused() {
        let r = row(&view(
            r#"{"host":"b.test","state":"self-signed","reason":"ACME is off","new_field":1}"#,
        ));
        assert_eq!(r[1..], ["self-signed", "-", "-", "ACME is off"]);
    }
}
