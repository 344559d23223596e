//! The few pages the edge answers itself. Small, static, no third-party assets.

use bytes::Bytes;

/// A complete HTML page for an edge-generated error.
pub fn error_page(status: u16, title: &str, detail: &str) -> Bytes {
    Bytes::from(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{status} {title}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;\
         padding:0 1rem;color:#222}}h1{{font-size:1.4rem}}small{{color:#777}}</style></head>\
         <body><h1>{status} {title}</h1><p>{detail}</p><small>minicloud</small></body></html>\n"
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn page_names_the_status() {
        let page = super::error_page(404, "Not Found", "No app here.");
        let text = std::str::from_utf8(&page).unwrap();
        assert!(text.contains("<title>404 Not Found</title>"));
        assert!(text.contains("No app here."));
    }
}
