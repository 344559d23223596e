//! Text shown back to a person, and text put into URLs.

/// At most a short prefix of what a person typed, for an error message: an error never
/// echoes a huge input.
pub fn short(input: &str) -> String {
    const MAX_CHARS: usize = 64;
    match input.char_indices().nth(MAX_CHARS) {
        Some((at, _)) => format!("{}…", &input[..at]),
        None => input.to_owned(),
    }
}

/// `s` percent-encoded for one component of a URL (userinfo, a path segment): everything but
/// RFC 3986's unreserved characters, so `blog-2` and `shop.example.com` stay readable in
/// the server's logs and the audit log. A path segment of dots alone is the caller's to
/// refuse: a client resolves `..` before sending it.
pub fn url_component(s: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const RESERVED_AND_OTHERS: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    utf8_percent_encode(s, RESERVED_AND_OTHERS).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_url_component_keeps_only_unreserved_characters() {
        assert_eq!(super::url_component("blog-2"), "blog-2");
        assert_eq!(super::url_component("shop.example.com"), "shop.example.com");
        assert_eq!(super::url_component("a_b~c"), "a_b~c");
        assert_eq!(
            super::url_component("p@ss:w/rd?#%"),
            "p%40ss%3Aw%2Frd%3F%23%25"
        );
        assert_eq!(super::url_component("ä "), "%C3%A4%20");
    }

    #[test]
    fn long_input_is_cut_at_a_character_boundary() {
        assert_eq!(super::short("äbc"), "äbc");
        let long = "ä".repeat(100_000);
        let shown = super::short(&long);
        assert_eq!(shown.chars().count(), 65);
        assert!(shown.ends_with('…'));
    }
}
