//! The admin app's CSS and JS, embedded at build time and served under names that carry a
//! hash of their content, so browsers may keep them for a year and still never run a stale one.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

struct Asset {
    /// `app.css` → served as `app.<hash>.css`.
    stem: &'static str,
    ext: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        stem: "app",
        ext: "css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../../admin-ui/static/app.css"),
    },
    Asset {
        stem: "app",
        ext: "js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../admin-ui/static/app.js"),
    },
];

/// Each asset's served name, in the order of [`ASSETS`].
static NAMES: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let hash = hex::encode(Sha256::digest(a.body.as_bytes()));
            format!("{}.{}.{}", a.stem, &hash[..12], a.ext)
        })
        .collect()
});

/// The URL of the stylesheet.
pub fn css_url() -> String {
    format!("/static/{}", NAMES[0])
}

/// The URL of the script.
pub fn js_url() -> String {
    format!("/static/{}", NAMES[1])
}

pub async fn serve(Path(file): Path<String>) -> Response {
    match NAMES.iter().position(|n| *n == file) {
        Some(i) => (
            [
                (header::CONTENT_TYPE, ASSETS[i].content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            ASSETS[i].body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn asset_names_carry_a_content_hash_and_stay_small() {
        let css = super::css_url();
        assert!(
            css.starts_with("/static/app.") && css.ends_with(".css"),
            "{css}"
        );
        assert_eq!(css.len(), "/static/app.".len() + 12 + ".css".len());
        let total: usize = super::ASSETS.iter().map(|a| a.body.len()).sum();
        assert!(total < 60 * 1024, "CSS and JS are {total} bytes");
    }
}
