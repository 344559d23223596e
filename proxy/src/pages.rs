//! The few pages the edge answers itself. Small, static, no third-party assets.

use bytes::Bytes;

/// A complete HTML page for an edge-generated error. `title` and `detail` are text (a detail
/// may quote what a client sent, such as its Host): they are escaped.
pub fn error_page(status: u16, title: &str, detail: &str) -> Bytes {
    let (title, detail) = (escape_html(title), escape_html(detail));
    Bytes::from(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{status} {title}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;\
         padding:0 1rem;color:#222}}h1{{font-size:1.4rem}}small{{color:#777}}</style></head>\
         <body><h1>{status} {title}</h1><p>{detail}</p><small>minicloud</small></body></html>\n"
    ))
}

/// Text made safe inside HTML elements and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn what_a_client_sent_is_escaped() {
        let page = super::error_page(
            400,
            "Bad Request",
            "Host '<img src=x onerror=alert(1)>' & \"x\".",
        );
        let text = std::str::from_utf8(&page).unwrap();
        assert!(!text.contains("<img"), "{text}");
        assert!(
            text.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{text}"
        );
        assert!(text.contains("&#39; &amp; &quot;x&quot;."), "{text}");
    }

    #[test]
    fn page_names_the_status() {
        let page = super::error_page(404, "Not Found", "No app here.");
        let text = std::str::from_utf8(&page).unwrap();
        assert!(text.contains("<title>404 Not Found</title>"));
        assert!(text.contains("No app here."));
    }
}
