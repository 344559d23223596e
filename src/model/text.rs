//! Text shown back to a person.

/// At most a short prefix of what a person typed, for an error message: an error never
/// echoes a huge input.
pub fn short(input: &str) -> String {
    const MAX_CHARS: usize = 64;
    match input.char_indices().nth(MAX_CHARS) {
        Some((at, _)) => format!("{}…", &input[..at]),
        None => input.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_input_is_cut_at_a_character_boundary() {
        assert_eq!(super::short("äbc"), "äbc");
        let long = "ä".repeat(100_000);
        let shown = super::short(&long);
        assert_eq!(shown.chars().count(), 65);
        assert!(shown.ends_with('…'));
    }
}
