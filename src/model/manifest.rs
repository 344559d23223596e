//! The app contract: `/cloud_manifest.yml` (or `.yaml`, `.json`) at the image root.
//!
//! This module owns the manifest's schema and its validation: [`parse`] turns the file's text
//! into a [`Manifest`] or reports every problem at once, each naming the file and the place in
//! it, so a person fixes their manifest in one round. It does not read the file out of the
//! image (that is `docker::read_manifest`) and does not decide what the needs turn into (that
//! is `services`).
//!
//! The text is first read into a generic tree (YAML and JSON alike become a
//! `serde_json::Value`) and then walked by hand, rather than derived with serde: derive stops at
//! the first problem and its messages talk about Rust types, not about the file.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::name::AppName;

/// Variables minicloud injects itself; a manifest must not set them (see DESIGN.md).
pub const INJECTED_ENV: &[&str] = &[
    "DATABASE_URL",
    "AMQP_URL",
    "RABBITMQ_URL",
    "PORT",
    "APP_NAME",
    "APP_URL",
];

/// Longest runner name: it becomes part of container names (`mc-<app>-<runner>-<N>`).
pub const MAX_RUNNER_NAME_LEN: usize = 20;

const TOP_KEYS: &[&str] = &[
    "name", "expose", "needs", "health", "runners", "env", "init",
];
const EXPOSE_KEYS: &[&str] = &["proto", "port"];
const HEALTH_KEYS: &[&str] = &["path"];
const RUNNER_KEYS: &[&str] = &["name", "command"];
const FILE_NAMES: &str = "/cloud_manifest.yml, /cloud_manifest.yaml or /cloud_manifest.json";

/// A validated app manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    pub name: AppName,
    /// Exactly one entry today, with `proto: http`: the app's route target.
    pub expose: Vec<Expose>,
    pub needs: BTreeSet<Need>,
    /// `None`: any HTTP answer on the port counts as healthy.
    pub health: Option<Health>,
    pub runners: Vec<Runner>,
    /// Defaults for the app's environment; the admin's values override them.
    pub env: BTreeMap<String, String>,
    /// Whether the containers run Docker's init in front of the app (`init: false` opts out,
    /// for images that bring their own init). On by default: an app that is PID 1 without a
    /// SIGTERM handler ignores SIGTERM and is killed only after the stop timeout, and nothing
    /// reaps its zombies.
    pub init: bool,
}

impl Manifest {
    /// The port the edge routes HTTP to.
    pub fn http_port(&self) -> u16 {
        self.expose
            .iter()
            .find(|e| e.proto == Proto::Http)
            .map(|e| e.port)
            // Validation guarantees one http entry; 80 keeps this total without a panic.
            .unwrap_or(80)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Expose {
    pub proto: Proto,
    pub port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Http,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Need {
    Database,
    Messagebus,
    Storage,
}

impl Need {
    pub const ALL: [Need; 3] = [Need::Database, Need::Messagebus, Need::Storage];

    /// The need a word names (`database`, `messagebus`, `storage`).
    pub fn parse(word: &str) -> Option<Need> {
        Need::ALL.into_iter().find(|n| n.as_str() == word)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Need::Database => "database",
            Need::Messagebus => "messagebus",
            Need::Storage => "storage",
        }
    }
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// Starts with `/`.
    pub path: String,
}

/// An extra process from the same image: same env, no route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Runner {
    /// A DNS label of at most 20 characters, unique in the manifest, not `web`.
    pub name: String,
    /// argv, not a shell line; non-empty.
    pub command: Vec<String>,
}

/// One thing wrong in a manifest. `path` is where (`needs[1]`, `env.FOO`), empty for the top
/// level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("{file}: not a manifest file name (expected {FILE_NAMES})")]
    UnsupportedFile { file: String },
    #[error("{file}: not valid {format}: {reason}")]
    Syntax {
        file: String,
        format: &'static str,
        reason: String,
    },
    /// Every problem found, in file order.
    #[error("{}", lines(file, problems).join("\n"))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

impl ManifestError {
    /// One line per problem, each starting with the file name.
    pub fn lines(&self) -> Vec<String> {
        match self {
            ManifestError::Invalid { file, problems } => lines(file, problems),
            other => vec![other.to_string()],
        }
    }
}

fn lines(file: &str, problems: &[Problem]) -> Vec<String> {
    problems.iter().map(|p| format!("{file}: {p}")).collect()
}

/// Parses and validates a manifest. `file_name` (as found in the image, e.g.
/// `/cloud_manifest.yml`) picks the format and is named in every error.
pub fn parse(file_name: &str, text: &str) -> Result<Manifest, ManifestError> {
    let file = file_name.to_owned();
    let tree: Value = if file_name.ends_with(".yml") || file_name.ends_with(".yaml") {
        serde_yaml_ng::from_str(text).map_err(|e| ManifestError::Syntax {
            file: file.clone(),
            format: "YAML",
            reason: e.to_string(),
        })?
    } else if file_name.ends_with(".json") {
        serde_json::from_str(text).map_err(|e| ManifestError::Syntax {
            file: file.clone(),
            format: "JSON",
            reason: e.to_string(),
        })?
    } else {
        return Err(ManifestError::UnsupportedFile { file });
    };

    let mut c = Checker::default();
    let manifest = c.manifest(&tree);
    match manifest {
        Some(m) if c.problems.is_empty() => Ok(m),
        _ => Err(ManifestError::Invalid {
            file,
            problems: c.problems,
        }),
    }
}

/// Walks the tree, collecting problems instead of stopping at the first.
#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn problem(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.to_owned(),
            message: message.into(),
        });
    }

    fn wrong_type(&mut self, path: &str, expected: &str, got: &Value) {
        self.problem(path, format!("expected {expected}, got {}", describe(got)));
    }

    /// Reports keys not in `known`; returns the map.
    fn keys<'v>(
        &mut self,
        path: &str,
        v: &'v Value,
        known: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Some(map) = v.as_object() else {
            self.wrong_type(path, "a mapping", v);
            return None;
        };
        for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
            let known = known.join(", ");
            if path.is_empty() {
                self.problem(
                    "",
                    format!("unknown key '{key}' at top level (known: {known})"),
                );
            } else {
                self.problem(path, format!("unknown key '{key}' (known: {known})"));
            }
        }
        Some(map)
    }

    fn manifest(&mut self, v: &Value) -> Option<Manifest> {
        if v.is_null() {
            self.problem(
                "",
                "the manifest is empty (expected at least 'name' and 'expose')",
            );
            return None;
        }
        let map = self.keys("", v, TOP_KEYS)?;
        let name = match map.get("name") {
            None => {
                self.problem("", "missing key 'name' (the app's name, e.g. name: myapp)");
                None
            }
            Some(Value::String(s)) => AppName::try_new(s.as_str())
                .map_err(|e| self.problem("name", e.to_string()))
                .ok(),
            Some(other) => {
                self.wrong_type("name", "a string", other);
                None
            }
        };
        let expose = match map.get("expose") {
            None => {
                self.problem(
                    "",
                    "missing key 'expose' (e.g. expose: [{proto: http, port: 80}])",
                );
                None
            }
            Some(v) => self.expose(v),
        };
        let needs = map.get("needs").map(|v| self.needs(v)).unwrap_or_default();
        let health = map.get("health").and_then(|v| self.health(v));
        let runners = map
            .get("runners")
            .map(|v| self.runners(v))
            .unwrap_or_default();
        let env = map.get("env").map(|v| self.env(v)).unwrap_or_default();
        let init = match map.get("init") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.wrong_type("init", "true or false", other);
                true
            }
        };
        Some(Manifest {
            name: name?,
            expose: expose?,
            needs,
            health,
            runners,
            env,
            init,
        })
    }

    fn expose(&mut self, v: &Value) -> Option<Vec<Expose>> {
        let Some(list) = v.as_array() else {
            self.wrong_type(
                "expose",
                "a list (e.g. expose: [{proto: http, port: 80}])",
                v,
            );
            return None;
        };
        let mut out = Vec::new();
        for (i, entry) in list.iter().enumerate() {
            let path = format!("expose[{i}]");
            if let Some(e) = self.expose_entry(&path, entry) {
                out.push(e);
            }
        }
        if out.len() != list.len() {
            return None; // entries already reported
        }
        match out.len() {
            0 => {
                self.problem(
                    "expose",
                    "needs one entry (e.g. expose: [{proto: http, port: 80}])",
                );
                None
            }
            1 => Some(out),
            n => {
                self.problem(
                    "expose",
                    format!(
                        "{n} entries, but exactly one is supported: one 'proto: http' port, the \
                         app's route target"
                    ),
                );
                None
            }
        }
    }

    fn expose_entry(&mut self, path: &str, v: &Value) -> Option<Expose> {
        let map = self.keys(path, v, EXPOSE_KEYS)?;
        let proto = match map.get("proto") {
            None => {
                self.problem(path, "missing key 'proto' (e.g. proto: http)");
                None
            }
            Some(Value::String(s)) => match s.as_str() {
                "http" => Some(Proto::Http),
                "tcp" | "udp" | "https" | "grpc" => {
                    self.problem(
                        &format!("{path}.proto"),
                        format!("'{s}' is not supported yet (supported: http)"),
                    );
                    None
                }
                _ => {
                    self.problem(
                        &format!("{path}.proto"),
                        format!("unknown proto '{s}' (known: http)"),
                    );
                    None
                }
            },
            Some(other) => {
                self.wrong_type(&format!("{path}.proto"), "a string (http)", other);
                None
            }
        };
        let port = match map.get("port") {
            None => {
                self.problem(path, "missing key 'port' (e.g. port: 80)");
                None
            }
            Some(v) => match v
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n >= 1)
            {
                Some(p) => Some(p),
                None => {
                    self.problem(
                        &format!("{path}.port"),
                        format!("expected a port number 1-65535, got {}", describe_value(v)),
                    );
                    None
                }
            },
        };
        Some(Expose {
            proto: proto?,
            port: port?,
        })
    }

    fn needs(&mut self, v: &Value) -> BTreeSet<Need> {
        let mut out = BTreeSet::new();
        let Some(list) = v.as_array() else {
            if !v.is_null() {
                self.wrong_type("needs", "a list (e.g. needs: [database, storage])", v);
            }
            return out;
        };
        for (i, item) in list.iter().enumerate() {
            let path = format!("needs[{i}]");
            match item.as_str() {
                Some(s) => match Need::parse(s) {
                    Some(n) => {
                        out.insert(n);
                    }
                    None => self.problem(
                        &path,
                        format!("unknown need '{s}' (known: database, messagebus, storage)"),
                    ),
                },
                None => self.wrong_type(&path, "a string (database, messagebus or storage)", item),
            }
        }
        out
    }

    fn health(&mut self, v: &Value) -> Option<Health> {
        if v.is_null() {
            return None;
        }
        let map = self.keys("health", v, HEALTH_KEYS)?;
        match map.get("path") {
            None => {
                self.problem(
                    "health",
                    "missing key 'path' (e.g. health: {path: /healthz})",
                );
                None
            }
            Some(Value::String(p))
                if p.starts_with('/')
                    && !p.chars().any(|c| c.is_whitespace() || c.is_control()) =>
            {
                Some(Health { path: p.clone() })
            }
            Some(Value::String(p)) => {
                self.problem(
                    "health.path",
                    format!("'{p}' must start with '/' and have no spaces (e.g. /healthz)"),
                );
                None
            }
            Some(other) => {
                self.wrong_type("health.path", "a string (e.g. /healthz)", other);
                None
            }
        }
    }

    fn runners(&mut self, v: &Value) -> Vec<Runner> {
        let mut out = Vec::new();
        let Some(list) = v.as_array() else {
            if !v.is_null() {
                self.wrong_type(
                    "runners",
                    "a list (e.g. runners: [{name: worker, command: [./worker]}])",
                    v,
                );
            }
            return out;
        };
        let mut seen = HashSet::new();
        for (i, entry) in list.iter().enumerate() {
            let path = format!("runners[{i}]");
            let Some(map) = self.keys(&path, entry, RUNNER_KEYS) else {
                continue;
            };
            let name = match map.get("name") {
                None => {
                    self.problem(&path, "missing key 'name' (e.g. name: worker)");
                    None
                }
                Some(Value::String(s)) => match runner_name_problem(s) {
                    Some(why) => {
                        self.problem(&format!("{path}.name"), why);
                        None
                    }
                    None if !seen.insert(s.clone()) => {
                        self.problem(
                            &format!("{path}.name"),
                            format!("runner '{s}' is listed twice"),
                        );
                        None
                    }
                    None => Some(s.clone()),
                },
                Some(other) => {
                    self.wrong_type(&format!("{path}.name"), "a string", other);
                    None
                }
            };
            let command = self.command(&format!("{path}.command"), &path, map.get("command"));
            if let (Some(name), Some(command)) = (name, command) {
                out.push(Runner { name, command });
            }
        }
        out
    }

    fn command(&mut self, path: &str, parent: &str, v: Option<&Value>) -> Option<Vec<String>> {
        const EXAMPLE: &str = "(e.g. command: [\"./worker\", \"--queue\", \"mail\"])";
        let Some(v) = v else {
            self.problem(parent, format!("missing key 'command' {EXAMPLE}"));
            return None;
        };
        let Some(list) = v.as_array() else {
            // A shell line would need a shell in the image and quoting rules; argv is explicit.
            self.wrong_type(path, &format!("a list of strings {EXAMPLE}"), v);
            return None;
        };
        let args: Option<Vec<String>> =
            list.iter().map(|a| a.as_str().map(str::to_owned)).collect();
        match args {
            Some(args) if args.first().is_some_and(|a| !a.is_empty()) => Some(args),
            Some(_) => {
                self.problem(path, format!("must name a program to run {EXAMPLE}"));
                None
            }
            None => {
                self.problem(path, format!("every item must be a string {EXAMPLE}"));
                None
            }
        }
    }

    fn env(&mut self, v: &Value) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(map) = v.as_object() else {
            if !v.is_null() {
                self.wrong_type("env", "a mapping (e.g. env: {LOG_LEVEL: info})", v);
            }
            return out;
        };
        for (key, value) in map {
            let path = format!("env.{key}");
            if !is_env_key(key) {
                self.problem("env", format!("'{key}' is not a variable name (letters, digits, '_', not starting with a digit)"));
                continue;
            }
            if INJECTED_ENV.contains(&key.as_str()) {
                self.problem(
                    &path,
                    "is set by minicloud and cannot be set in the manifest",
                );
                continue;
            }
            match value {
                Value::String(s) => {
                    out.insert(key.clone(), s.clone());
                }
                // YAML turns `4` into a number and `1.10` into 1.1: ask for quotes rather than
                // guess the text the author meant.
                other => self.problem(
                    &path,
                    format!(
                        "expected a string, got {} (quote it: {key}: \"…\")",
                        describe(other)
                    ),
                ),
            }
        }
        out
    }
}

/// Why `name` is not a runner name, if it is not.
fn runner_name_problem(name: &str) -> Option<String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let starts = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    if name.is_empty()
        || name.len() > MAX_RUNNER_NAME_LEN
        || !ok_chars
        || !starts
        || name.ends_with('-')
        || name.contains("--")
    {
        return Some(format!(
            "'{name}' is not a runner name (1-{MAX_RUNNER_NAME_LEN} of a-z, 0-9, '-', starting \
             with a letter, not ending with '-', no '--')"
        ));
    }
    // `web` names the routed container of every app.
    if name == "web" {
        return Some("'web' is reserved for the app's web container".to_owned());
    }
    None
}

fn is_env_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Like [`describe`], but shows short scalars: "got 70000" says more than "got a number".
fn describe_value(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{s}'"),
        other => describe(other).to_owned(),
    }
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;

/// Property tests: the stable stand-in for `fuzz/fuzz_targets/manifest.rs`, with the same
/// properties, over arbitrary text and over generated manifests in both formats.
#[cfg(test)]
mod prop_tests {
    use super::*;
    use proptest::prelude::*;

    const FILES: [&str; 3] = [
        "/cloud_manifest.yml",
        "/cloud_manifest.yaml",
        "/cloud_manifest.json",
    ];

    /// What `parse` must hold for any text: no panic, an error names the file on every line,
    /// and an accepted manifest re-validates: written out as JSON and as YAML it parses back to
    /// itself.
    pub(super) fn check(file: &str, text: &str) {
        match parse(file, text) {
            Ok(m) => {
                let json = serde_json::to_string(&m).unwrap();
                assert_eq!(
                    parse("/cloud_manifest.json", &json).as_ref(),
                    Ok(&m),
                    "{json}"
                );
                let yaml = serde_yaml_ng::to_string(&m).unwrap();
                assert_eq!(
                    parse("/cloud_manifest.yml", &yaml).as_ref(),
                    Ok(&m),
                    "{yaml}"
                );
                assert_eq!(m.expose.len(), 1);
                assert!(m.http_port() >= 1);
            }
            Err(e) => {
                let lines = e.lines();
                assert!(!lines.is_empty(), "{e:?}");
                for line in lines {
                    assert!(line.starts_with(file), "{line:?}");
                }
            }
        }
    }

    /// Any JSON value, as the tree a manifest file becomes.
    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("\\PC{0,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Manifest-shaped trees: the known keys, each with a plausible or a wrong value.
    fn manifest_tree() -> impl Strategy<Value = Value> {
        let name = prop_oneof![
            4 => "[a-z][a-z0-9]{0,10}(-[a-z0-9]{1,8})?".prop_map(Value::String),
            1 => "[a-z][a-z0-9-]{0,44}".prop_map(Value::String),
            1 => value()
        ];
        let port = prop_oneof![4 => (0u32..70000).prop_map(Value::from), 1 => value()];
        let expose = prop_oneof![
            4 => port.prop_map(|p| serde_json::json!([{"proto": "http", "port": p}])),
            1 => value(),
        ];
        let needs = proptest::collection::vec(
            prop_oneof![
                Just("database".to_owned()),
                Just("messagebus".to_owned()),
                Just("storage".to_owned()),
                "[a-z]{0,10}"
            ],
            0..4,
        )
        .prop_map(|v| serde_json::json!(v));
        let health = prop_oneof![
            4 => "/\\PC{0,12}".prop_map(|p| serde_json::json!({ "path": p })),
            1 => value()
        ];
        let runner = (
            "[a-z][a-z0-9-]{0,22}",
            proptest::collection::vec("\\PC{0,10}", 0..3),
        )
            .prop_map(|(n, c)| serde_json::json!({"name": n, "command": c}));
        let runners = proptest::collection::vec(runner, 0..3).prop_map(Value::Array);
        let env = proptest::collection::btree_map(
            "[A-Za-z_][A-Za-z0-9_]{0,10}",
            prop_oneof![4 => "\\PC{0,16}".prop_map(Value::String), 1 => value()],
            0..4,
        )
        .prop_map(|m| Value::Object(m.into_iter().collect()));
        let init = prop_oneof![4 => any::<bool>().prop_map(Value::Bool), 1 => value()];
        (
            name,
            expose,
            proptest::option::of(needs),
            proptest::option::of(health),
            proptest::option::of(runners),
            proptest::option::of(env),
            proptest::option::of(init),
        )
            .prop_map(|(name, expose, needs, health, runners, env, init)| {
                let mut m = Map::new();
                m.insert("name".into(), name);
                m.insert("expose".into(), expose);
                let optional = [
                    ("needs", needs),
                    ("health", health),
                    ("runners", runners),
                    ("env", env),
                    ("init", init),
                ];
                for (k, v) in optional {
                    if let Some(v) = v {
                        m.insert(k.into(), v);
                    }
                }
                Value::Object(m)
            })
    }

    proptest! {
        #![proptest_config(crate::model::prop_config())]

        #[test]
        fn prop_manifest_of_any_text(file in 0usize..3, text in "\\PC{0,400}") {
            check(FILES[file], &text);
        }

        #[test]
        fn prop_manifest_of_any_tree(tree in value()) {
            check("/cloud_manifest.json", &serde_json::to_string(&tree).unwrap());
            check("/cloud_manifest.yml", &serde_yaml_ng::to_string(&tree).unwrap());
        }

        #[test]
        fn prop_manifest_shaped(tree in manifest_tree()) {
            check("/cloud_manifest.json", &serde_json::to_string(&tree).unwrap());
            check("/cloud_manifest.yml", &serde_yaml_ng::to_string(&tree).unwrap());
        }
    }
}
