//! Reading what people type into forms: optional fields, `KEY=VALUE` lines. Pure; what the
//! values may be is checked by the operations they go to.

use std::collections::BTreeMap;

/// An empty or blank field is no value.
pub fn optional(field: &str) -> Option<&str> {
    let trimmed = field.trim();
    (!trimmed.is_empty()).then_some(trimmed)
}

/// `KEY=VALUE` lines, as pasted from a `.env` file: blank lines and `#` comments are skipped,
/// the value is everything after the first `=` (kept as typed, spaces included).
pub fn env_lines(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut env = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "line {} has no '=': write each variable as KEY=VALUE",
                number + 1
            ));
        };
        env.insert(key.trim().to_owned(), value.to_owned());
    }
    Ok(env)
}

/// A whole number of MiB, or nothing.
pub fn memory_mb(field: &str) -> Result<Option<u64>, String> {
    optional(field)
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| format!("memory must be a whole number of MiB, not {v:?}"))
        })
        .transpose()
}

/// The non-blank lines of a text area (domains, one a line), trimmed.
pub fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_skip_blanks_and_trim() {
        assert_eq!(
            lines(" a.example.com \r\n\n b.example.com"),
            ["a.example.com", "b.example.com"]
        );
        assert!(lines("  \n").is_empty());
    }

    #[test]
    fn env_lines_read_like_a_dotenv_file() {
        let env = env_lines("# db\nA=1\n\n B = x=y \r\nEMPTY=\n").unwrap();
        assert_eq!(env["A"], "1");
        assert_eq!(env["B"], " x=y ");
        assert_eq!(env["EMPTY"], "");
        assert_eq!(env.len(), 3);
        assert_eq!(
            env_lines("A=1\nnonsense").unwrap_err(),
            "line 2 has no '=': write each variable as KEY=VALUE"
        );
    }

    #[test]
    fn optional_fields_and_memory() {
        assert_eq!(optional("  "), None);
        assert_eq!(optional(" a "), Some("a"));
        assert_eq!(memory_mb("").unwrap(), None);
        assert_eq!(memory_mb("256").unwrap(), Some(256));
        assert!(memory_mb("lots").is_err());
    }
}
