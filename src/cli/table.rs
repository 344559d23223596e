//! Plain aligned tables, the way `docker ps` and `kubectl get` print.

/// Renders rows under upper-case headers, columns separated by three spaces.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = String>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                text.push_str("   ");
            }
            let pad = widths[i].saturating_sub(cell.chars().count());
            text.push_str(&cell);
            text.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().map(|h| h.to_ascii_uppercase()));
    for row in rows {
        line(&mut row.iter().cloned());
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_align() {
        let out = super::render(
            &["host", "upstream"],
            &[
                vec!["a.example.com".into(), "127.0.0.1:1".into()],
                vec!["b".into(), "127.0.0.1:22".into()],
            ],
        );
        assert_eq!(
            out,
            "HOST            UPSTREAM\na.example.com   127.0.0.1:1\nb               127.0.0.1:22\n"
        );
    }
}
