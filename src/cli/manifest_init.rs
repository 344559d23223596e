//! `minicloud manifest init`: writes a starting `cloud_manifest.yml` from flags, or from a few
//! questions on a terminal.
//!
//! This module owns the answers ([`Draft`]), the questions, and the text written. The schema
//! stays `model::manifest`'s: the text is parsed back with [`manifest::parse`] before it is
//! written, so `init` can never write a file `manifest check` refuses.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::Path;

use crate::model::manifest::{self, Manifest, Need};
use crate::model::name::{AppName, MAX_LEN};

/// The port a new app listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 8080;
/// The name used when the directory's name cannot be made into an app name.
const FALLBACK_NAME: &str = "myapp";

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{path} already exists; pass --force to overwrite it")]
    Exists { path: String },
    #[error("cannot write {path}: {why}")]
    Write { path: String, why: String },
    #[error("{path}: the manifest is YAML here; name the file cloud_manifest.yml")]
    NotYaml { path: String },
    #[error("--name '{name}': {why}")]
    Name { name: String, why: String },
    #[error("--runner '{0}': expected NAME=COMMAND (e.g. worker=\"python -m worker\")")]
    Runner(String),
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("reading the answers: {0}")]
    Ask(String),
}

/// What `init` was told by its flags; `None` where a question may still be asked.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub name: Option<String>,
    pub port: Option<u16>,
    pub health: Option<String>,
    pub needs: BTreeSet<Need>,
    pub runners: Vec<String>,
}

/// The answers a manifest is written from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub name: String,
    pub port: u16,
    pub health: Option<String>,
    pub needs: BTreeSet<Need>,
    /// Name and argv of each runner.
    pub runners: Vec<(String, Vec<String>)>,
}

/// `--runner NAME=COMMAND`: the command is split at whitespace into the argv (a manifest's
/// command is never a shell line).
pub fn parse_runner(spec: &str) -> Result<(String, Vec<String>), InitError> {
    let (name, command) = spec
        .split_once('=')
        .ok_or_else(|| InitError::Runner(spec.to_owned()))?;
    let argv: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
    if name.trim().is_empty() || argv.is_empty() {
        return Err(InitError::Runner(spec.to_owned()));
    }
    Ok((name.trim().to_owned(), argv))
}

/// A directory's name made into a valid app name: lower-case, other characters as single `-`,
/// starting with a letter; `myapp` when nothing is left or the result is reserved.
pub fn app_name_from(dir: &str) -> String {
    let mut out = String::new();
    for c in dir.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_start_matches(|c: char| !c.is_ascii_lowercase());
    let mut out: String = out.chars().take(MAX_LEN).collect();
    while out.ends_with('-') {
        out.pop();
    }
    if AppName::try_new(out.as_str()).is_ok() {
        out
    } else {
        FALLBACK_NAME.to_owned()
    }
}

/// The default name: the current directory's, made valid.
pub fn default_name() -> String {
    let dir = std::env::current_dir().ok();
    let base = dir
        .as_deref()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    app_name_from(&base)
}

/// The draft from the flags and defaults alone (no terminal, or `--yes`).
pub fn from_flags(flags: &Flags, default_name: &str) -> Result<Draft, InitError> {
    Ok(Draft {
        name: flags
            .name
            .clone()
            .unwrap_or_else(|| default_name.to_owned()),
        port: flags.port.unwrap_or(DEFAULT_PORT),
        health: flags.health.clone(),
        needs: flags.needs.clone(),
        runners: flags
            .runners
            .iter()
            .map(|r| parse_runner(r))
            .collect::<Result<_, _>>()?,
    })
}

/// Asks, on `output`, for what the flags left open (name, port, services), each with its
/// default in brackets; an empty answer or the end of `input` takes the default, a wrong one
/// is asked again.
pub fn ask(
    flags: &Flags,
    default_name: &str,
    input: &mut impl BufRead,
    output: &mut impl Write,
) -> Result<Draft, InitError> {
    let mut draft = from_flags(flags, default_name)?;
    let io = |e: std::io::Error| InitError::Ask(e.to_string());
    let mut line = |prompt: &str, output: &mut dyn Write| -> Result<Option<String>, InitError> {
        write!(output, "{prompt}").map_err(io)?;
        output.flush().map_err(io)?;
        let mut answer = String::new();
        if input.read_line(&mut answer).map_err(io)? == 0 {
            writeln!(output).map_err(io)?;
            return Ok(None);
        }
        let answer = answer.trim();
        Ok((!answer.is_empty()).then(|| answer.to_owned()))
    };
    if flags.name.is_none() {
        loop {
            let prompt = format!("App name [{}]: ", draft.name);
            let Some(answer) = line(&prompt, output)? else {
                break;
            };
            match AppName::try_new(answer.as_str()) {
                Ok(_) => {
                    draft.name = answer;
                    break;
                }
                Err(e) => writeln!(output, "  {e}").map_err(io)?,
            }
        }
    }
    if flags.port.is_none() {
        loop {
            let prompt = format!("Port the app listens on [{}]: ", draft.port);
            let Some(answer) = line(&prompt, output)? else {
                break;
            };
            match answer.parse::<u16>() {
                Ok(port) if port >= 1 => {
                    draft.port = port;
                    break;
                }
                _ => writeln!(output, "  '{answer}' is not a port number 1-65535").map_err(io)?,
            }
        }
    }
    if flags.needs.is_empty() {
        loop {
            let prompt = "Services it needs (database, messagebus, storage; comma-separated) \
                          [none]: ";
            let Some(answer) = line(prompt, output)? else {
                break;
            };
            let words: Vec<&str> = answer.split([',', ' ']).filter(|w| !w.is_empty()).collect();
            let unknown: Vec<&str> = words
                .iter()
                .copied()
                .filter(|w| Need::parse(w).is_none() && *w != "none")
                .collect();
            if unknown.is_empty() {
                draft.needs = words.into_iter().filter_map(Need::parse).collect();
                break;
            }
            writeln!(
                output,
                "  unknown: {} (known: database, messagebus, storage)",
                unknown.join(", ")
            )
            .map_err(io)?;
        }
    }
    Ok(draft)
}

/// A plain YAML scalar when it reads back as the same string, else a quoted one (JSON's quoting
/// is valid YAML).
fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && !s.starts_with(['-', '.'])
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
        )
        && s.parse::<f64>().is_err();
    if plain {
        s.to_owned()
    } else {
        serde_json::Value::String(s.to_owned()).to_string()
    }
}

/// The file's text: a header pointing at the reference, then the fields in the reference's
/// order (name, expose, needs, health, runners), the optional ones only when asked for.
pub fn render(draft: &Draft) -> String {
    let mut out = String::from(
        "# minicloud app manifest: put it at the image root as /cloud_manifest.yml.\n\
         # Every field, its default and examples: docs/apps.md in minicloud's repository\n\
         # (\"The manifest\"). Check it with: minicloud manifest check cloud_manifest.yml\n",
    );
    out.push_str(&format!("name: {}\n", scalar(&draft.name)));
    out.push_str(&format!("expose:\n- proto: http\n  port: {}\n", draft.port));
    if !draft.needs.is_empty() {
        let needs: Vec<&str> = draft.needs.iter().map(|n| n.as_str()).collect();
        out.push_str(&format!("needs: [{}]\n", needs.join(", ")));
    }
    if let Some(path) = &draft.health {
        out.push_str(&format!("health: {{path: {}}}\n", scalar(path)));
    }
    if !draft.runners.is_empty() {
        out.push_str("runners:\n");
        for (name, argv) in &draft.runners {
            let argv: Vec<String> = argv
                .iter()
                .map(|a| serde_json::Value::String(a.clone()).to_string())
                .collect();
            out.push_str(&format!(
                "- name: {}\n  command: [{}]\n",
                scalar(name),
                argv.join(", ")
            ));
        }
    }
    out
}

/// The text and the manifest it parses to, or every problem the parser found.
pub fn generate(draft: &Draft) -> Result<(String, Manifest), InitError> {
    if let Err(e) = AppName::try_new(draft.name.as_str()) {
        return Err(InitError::Name {
            name: draft.name.clone(),
            why: e.to_string(),
        });
    }
    let text = render(draft);
    match manifest::parse("cloud_manifest.yml", &text) {
        Ok(m) => Ok((text, m)),
        Err(e) => Err(InitError::Invalid(e.lines())),
    }
}

/// Writes the text to `path`; an existing file only with `force`.
pub fn write(path: &Path, text: &str, force: bool) -> Result<(), InitError> {
    let shown = path.display().to_string();
    let name = path.to_string_lossy();
    if !(name.ends_with(".yml") || name.ends_with(".yaml")) {
        return Err(InitError::NotYaml { path: shown });
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        // create_new: the check and the creation are one step, so nothing is overwritten.
        options.create_new(true);
    }
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => InitError::Exists {
            path: shown.clone(),
        },
        _ => InitError::Write {
            path: shown.clone(),
            why: e.to_string(),
        },
    })?;
    file.write_all(text.as_bytes())
        .map_err(|e| InitError::Write {
            path: shown,
            why: e.to_string(),
        })
}

/// The whole command: flags, questions when `interactive`, the file written.
pub fn init(
    flags: &Flags,
    output: &Path,
    force: bool,
    interactive: bool,
) -> Result<Manifest, InitError> {
    let default = default_name();
    let draft = if interactive {
        let stdin = std::io::stdin();
        ask(flags, &default, &mut stdin.lock(), &mut std::io::stderr())?
    } else {
        from_flags(flags, &default)?
    };
    let (text, manifest) = generate(&draft)?;
    write(output, &text, force)?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::manifest::{Health, Proto, Runner};

    fn draft(name: &str) -> Draft {
        Draft {
            name: name.to_owned(),
            port: DEFAULT_PORT,
            health: None,
            needs: BTreeSet::new(),
            runners: Vec::new(),
        }
    }

    #[test]
    fn every_flag_combination_parses_back_to_the_manifest_asked_for() {
        let runner_sets: [&[&str]; 3] = [
            &[],
            &["worker=python -m blog.worker"],
            &["worker=./worker --queue \"mail\"", "cron=sh -c 'x: y'"],
        ];
        for mask in 0..8u8 {
            for health in [None, Some("/healthz"), Some("/")] {
                for runners in runner_sets {
                    let needs: BTreeSet<Need> = Need::ALL
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| mask & (1 << i) != 0)
                        .map(|(_, n)| n)
                        .collect();
                    let flags = Flags {
                        name: Some("blog".into()),
                        port: Some(3000),
                        health: health.map(str::to_owned),
                        needs: needs.clone(),
                        runners: runners.iter().map(|r| r.to_string()).collect(),
                    };
                    let d = from_flags(&flags, "unused").unwrap();
                    let (text, m) = generate(&d).unwrap();
                    assert_eq!(m.name.as_str(), "blog");
                    assert_eq!(m.http_port(), 3000);
                    assert_eq!(m.expose[0].proto, Proto::Http);
                    assert_eq!(m.needs, needs, "{text}");
                    assert_eq!(
                        m.health,
                        health.map(|p| Health { path: p.to_owned() }),
                        "{text}"
                    );
                    let expected: Vec<Runner> = runners
                        .iter()
                        .map(|r| {
                            let (name, argv) = parse_runner(r).unwrap();
                            Runner {
                                name,
                                command: argv,
                            }
                        })
                        .collect();
                    assert_eq!(m.runners, expected, "{text}");
                    assert!(m.env.is_empty() && m.init);
                }
            }
        }
    }

    #[test]
    fn the_file_points_at_the_reference_and_keeps_its_order() {
        let mut d = draft("blog");
        d.health = Some("/healthz".into());
        d.needs = [Need::Storage, Need::Database].into();
        d.runners = vec![("worker".into(), vec!["./worker".into()])];
        let text = render(&d);
        assert!(
            text.starts_with('#') && text.contains("docs/apps.md"),
            "{text}"
        );
        let at = |key: &str| text.find(&format!("\n{key}:")).unwrap();
        assert!(at("name") < at("expose"));
        assert!(at("expose") < at("needs"));
        assert!(at("needs") < at("health"));
        assert!(at("health") < at("runners"));
        assert!(text.contains("needs: [database, storage]"), "{text}");
    }

    #[test]
    fn defaults_are_port_8080_and_no_health_needs_or_runners() {
        let d = from_flags(&Flags::default(), "shop").unwrap();
        let (text, m) = generate(&d).unwrap();
        assert_eq!((m.name.as_str(), m.http_port()), ("shop", 8080));
        assert!(m.health.is_none() && m.needs.is_empty() && m.runners.is_empty());
        for key in ["needs:", "health:", "runners:"] {
            assert!(!text.contains(key), "{text}");
        }
    }

    #[test]
    fn wrong_answers_are_named_before_anything_is_written() {
        let err = generate(&draft("Blog")).unwrap_err().to_string();
        assert!(err.starts_with("--name 'Blog'"), "{err}");
        let mut d = draft("blog");
        d.health = Some("healthz".into());
        let err = generate(&d).unwrap_err().to_string();
        assert!(err.contains("health.path"), "{err}");
        let mut d = draft("blog");
        d.runners = vec![("web".into(), vec!["x".into()])];
        assert!(generate(&d).unwrap_err().to_string().contains("reserved"));
        for bad in ["worker", "worker=", "=./w"] {
            assert!(
                matches!(parse_runner(bad), Err(InitError::Runner(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_directory_name_becomes_a_valid_app_name() {
        for (dir, name) in [
            ("blog", "blog"),
            ("My Blog_2", "my-blog-2"),
            ("2048-game", "game"),
            ("--x--y--", "x-y"),
            ("", FALLBACK_NAME),
            ("admin", FALLBACK_NAME),
            ("日本", FALLBACK_NAME),
        ] {
            assert_eq!(app_name_from(dir), name, "{dir:?}");
            assert!(AppName::try_new(app_name_from(dir)).is_ok());
        }
        let long = "a".repeat(100);
        assert_eq!(app_name_from(&long).len(), MAX_LEN);
    }

    #[test]
    fn questions_take_defaults_re_ask_wrong_answers_and_skip_what_flags_gave() {
        let mut input = std::io::Cursor::new("Bad Name\nshop\n\ndatabase, storage\n");
        let mut shown = Vec::new();
        let d = ask(&Flags::default(), "dir", &mut input, &mut shown).unwrap();
        let shown = String::from_utf8(shown).unwrap();
        assert_eq!(d.name, "shop");
        assert_eq!(d.port, DEFAULT_PORT);
        assert_eq!(d.needs, [Need::Database, Need::Storage].into());
        assert!(
            shown.contains("App name [dir]") && shown.contains("[8080]"),
            "{shown}"
        );
        assert_eq!(shown.matches("App name").count(), 2, "asked again: {shown}");

        // The end of input takes every default; flags are not asked about.
        let flags = Flags {
            port: Some(5000),
            ..Flags::default()
        };
        let mut shown = Vec::new();
        let d = ask(&flags, "dir", &mut std::io::empty(), &mut shown).unwrap();
        assert_eq!((d.name.as_str(), d.port), ("dir", 5000));
        assert!(!String::from_utf8(shown).unwrap().contains("Port"));
    }

    #[test]
    fn an_existing_file_is_kept_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cloud_manifest.yml");
        write(&path, "one", false).unwrap();
        let err = write(&path, "two", false).unwrap_err().to_string();
        assert!(
            err.contains("already exists") && err.contains("--force"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one");
        write(&path, "three", true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three");
        let json = dir.path().join("cloud_manifest.json");
        assert!(matches!(
            write(&json, "x", false),
            Err(InitError::NotYaml { .. })
        ));
    }
}
