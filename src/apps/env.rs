//! The environment an app's containers get: the manifest's defaults, then what the admin set,
//! then what minicloud injects (which nobody can override, so `PORT` and the service URLs are
//! always the real ones).

use std::collections::BTreeMap;

use crate::model::manifest::Manifest;
use crate::model::name::AppName;
use crate::model::short;

/// The kernel's limit for one string of a new process's environment (`MAX_ARG_STRLEN`):
/// `KEY=value` and its terminating NUL.
pub const MAX_VAR_BYTES: usize = 128 * 1024;
/// At most this many variables the admin sets.
pub const MAX_VARS: usize = 1000;
/// At most this many bytes of `KEY=value` strings in all (the kernel allows about 2 MiB for
/// arguments and environment together; minicloud's own variables and the image's need room).
pub const MAX_TOTAL_BYTES: usize = 1024 * 1024;

/// Builds the complete environment for one revision.
///
/// `services` holds what the provisioners inject (`DATABASE_URL`, `AMQP_URL`, ...).
pub fn build_env(
    app: &AppName,
    manifest: &Manifest,
    app_url: &str,
    admin_env: &BTreeMap<String, String>,
    services: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut env = manifest.env.clone();
    env.extend(admin_env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.extend(services.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.insert("PORT".into(), manifest.http_port().to_string());
    env.insert("APP_NAME".into(), app.to_string());
    env.insert("APP_URL".into(), app_url.to_string());
    env
}

/// The passwords in an environment's URLs (`DATABASE_URL`, `AMQP_URL`, any other
/// `scheme://user:password@host`), as written and percent-decoded: what must not show in a
/// captured log line.
pub fn url_passwords(env: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for value in env.values() {
        let Ok(url) = url::Url::parse(value) else {
            continue;
        };
        let Some(password) = url.password().filter(|p| !p.is_empty()) else {
            continue;
        };
        let decoded = percent_encoding::percent_decode_str(password).decode_utf8_lossy();
        if decoded != password {
            out.push(decoded.into_owned());
        }
        out.push(password.to_owned());
    }
    out
}

/// `text` with each of `secrets` replaced by `<redacted>`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_owned(), |t, s| t.replace(s.as_str(), "<redacted>"))
}

/// Checks a variable name the admin wants to set: a shell-style name that minicloud does not
/// inject itself.
pub fn check_admin_var(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "'{}' is not a variable name (letters, digits and '_', not starting with a digit)",
            short(name)
        ));
    }
    if crate::model::manifest::INJECTED_ENV.contains(&name) {
        return Err(format!(
            "'{name}' is set by minicloud and cannot be overridden"
        ));
    }
    Ok(())
}

/// Checks what an `unset` names: a variable, or a pattern where `*` stands for any run of
/// characters (`FEATURE_*`; `*` alone is every variable).
pub fn check_unset(pattern: &str) -> Result<(), String> {
    let name_chars = pattern
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '*');
    if pattern.is_empty() || !name_chars {
        return Err(format!(
            "'{}' is neither a variable name nor a pattern like FEATURE_* ('*' for all)",
            short(pattern)
        ));
    }
    Ok(())
}

/// Whether `name` is what an `unset` of `pattern` removes (see [`check_unset`]).
pub fn unset_matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: the name itself.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Checks the variables the admin set, whole: names, values a process can be started with
/// (no NUL, within the kernel's size for one string), and the count and total size.
pub fn check_admin_env(env: &BTreeMap<String, String>) -> Result<(), String> {
    let mut total = 0;
    for (name, value) in env {
        check_admin_var(name)?;
        if value.contains('\0') {
            return Err(format!(
                "the value of {} contains a NUL character, which no process environment can hold",
                short(name)
            ));
        }
        let bytes = name.len() + 1 + value.len() + 1;
        if bytes > MAX_VAR_BYTES {
            return Err(format!(
                "{}=… is {bytes} bytes; one variable can be at most {} KiB (the kernel's limit); put large data in a file in the app's storage",
                short(name),
                MAX_VAR_BYTES / 1024
            ));
        }
        total += bytes;
    }
    if env.len() > MAX_VARS {
        return Err(format!(
            "{} variables; an app can have at most {MAX_VARS}",
            env.len()
        ));
    }
    if total > MAX_TOTAL_BYTES {
        return Err(format!(
            "the variables take {total} bytes; at most {} KiB in all",
            MAX_TOTAL_BYTES / 1024
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injected_passwords_are_redacted_from_text() {
        let env = BTreeMap::from([
            (
                "DATABASE_URL".to_owned(),
                "mysql://app_x:s3cretPW@db:3306/app_x".to_owned(),
            ),
            (
                "AMQP_URL".to_owned(),
                "amqp://app_x:p%40ss@mq:5672/app_x".to_owned(),
            ),
            ("GREETING".to_owned(), "hello".to_owned()),
            ("SITE".to_owned(), "https://example.com/".to_owned()),
        ]);
        let secrets = url_passwords(&env);
        let text = "connect mysql://app_x:s3cretPW@db failed; amqp p@ss and p%40ss; hello";
        assert_eq!(
            redact(text, &secrets),
            "connect mysql://app_x:<redacted>@db failed; amqp <redacted> and <redacted>; hello"
        );
    }
    use crate::model::manifest;

    fn manifest() -> Manifest {
        manifest::parse(
            "/cloud_manifest.yml",
            "name: probe\nexpose:\n- proto: http\n  port: 8080\nenv: {LOG_LEVEL: info, MODE: a}\n",
        )
        .unwrap()
    }

    #[test]
    fn admin_overrides_manifest_and_injected_wins_over_all() {
        let app = AppName::try_new("probe").unwrap();
        let admin = BTreeMap::from([
            ("MODE".to_string(), "b".to_string()),
            ("EXTRA".to_string(), "1".to_string()),
        ]);
        let services = BTreeMap::from([("DATABASE_URL".to_string(), "mysql://x".to_string())]);
        let env = build_env(
            &app,
            &manifest(),
            "https://probe.example.com",
            &admin,
            &services,
        );
        assert_eq!(env["LOG_LEVEL"], "info");
        assert_eq!(env["MODE"], "b");
        assert_eq!(env["EXTRA"], "1");
        assert_eq!(env["PORT"], "8080");
        assert_eq!(env["APP_NAME"], "probe");
        assert_eq!(env["APP_URL"], "https://probe.example.com");
        assert_eq!(env["DATABASE_URL"], "mysql://x");
    }

    #[test]
    fn an_environment_no_process_could_start_with_is_refused_at_each_limit() {
        let one = |k: &str, v: String| BTreeMap::from([(k.to_string(), v)]);
        assert!(check_admin_env(&one("A", "x\ny=z".into())).is_ok());
        let err = check_admin_env(&one("NUL", "a\0b".into())).unwrap_err();
        assert!(err.contains("NUL"), "{err}");
        // `A=` + value + NUL: exactly at the limit, then one byte over.
        let at = MAX_VAR_BYTES - 3;
        assert!(check_admin_env(&one("A", "x".repeat(at))).is_ok());
        let err = check_admin_env(&one("A", "x".repeat(at + 1))).unwrap_err();
        assert!(err.contains("128 KiB") && err.len() < 200, "{err}");
        let many = |n: usize| {
            (0..n)
                .map(|i| (format!("V{i}"), "x".into()))
                .collect::<BTreeMap<_, _>>()
        };
        assert!(check_admin_env(&many(MAX_VARS)).is_ok());
        let err = check_admin_env(&many(MAX_VARS + 1)).unwrap_err();
        assert!(err.contains("at most 1000"), "{err}");
        // Nine values of 120 KiB each fit one by one, not together.
        let big = (0..9)
            .map(|i| (format!("B{i}"), "x".repeat(120 * 1024)))
            .collect::<BTreeMap<_, _>>();
        let err = check_admin_env(&big).unwrap_err();
        assert!(err.contains("in all"), "{err}");
        // A bad name is echoed only in part.
        let err = check_admin_env(&one(&"-".repeat(10_000), String::new())).unwrap_err();
        assert!(err.len() < 300, "{err}");
    }

    #[test]
    fn unset_takes_a_name_or_a_pattern() {
        for (pattern, name, removed) in [
            ("A", "A", true),
            ("A", "AB", false),
            ("*", "ANY", true),
            ("FEATURE_*", "FEATURE_X", true),
            ("FEATURE_*", "FEATURE_", true),
            ("FEATURE_*", "XFEATURE_X", false),
            ("*_URL", "CDN_URL", true),
            ("*_URL", "CDN_URLS", false),
            ("A*B*C", "AXBYC", true),
            ("A*B*C", "ACB", false),
            ("AB*BA", "ABA", false),
        ] {
            assert_eq!(unset_matches(pattern, name), removed, "{pattern} {name}");
        }
        assert!(check_unset("FEATURE_*").is_ok());
        for bad in ["", "A B", "A=1", "A?"] {
            assert!(check_unset(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn admin_variables_are_checked() {
        assert!(check_admin_var("LOG_LEVEL").is_ok());
        assert!(check_admin_var("_x1").is_ok());
        for bad in ["", "1X", "A-B", "A B", "PORT", "DATABASE_URL"] {
            assert!(check_admin_var(bad).is_err(), "{bad:?}");
        }
    }
}

/// Property tests: the stable stand-in for `fuzz/fuzz_targets/env.rs`, with the same
/// properties: the layering of [`build_env`], and the admin checks and `unset` patterns.
#[cfg(test)]
mod prop_tests {
    use super::*;
    use crate::model::manifest::{Expose, Proto};
    use proptest::prelude::*;

    /// Whether `name` matches the glob `pattern` (`*`: any run), by plain recursion: the
    /// reference `unset_matches` must agree with.
    fn glob(pattern: &[u8], name: &[u8]) -> bool {
        match pattern.split_first() {
            None => name.is_empty(),
            Some((b'*', rest)) => (0..=name.len()).any(|i| glob(rest, &name[i..])),
            Some((c, rest)) => name.first() == Some(c) && glob(rest, &name[1..]),
        }
    }

    /// What `build_env` must hold: every key comes from one of its inputs or is injected, the
    /// injected ones are always the real values, and services beat the admin, who beats the
    /// manifest.
    pub(super) fn check_build(
        port: u16,
        manifest_env: BTreeMap<String, String>,
        admin: BTreeMap<String, String>,
        services: BTreeMap<String, String>,
        app_url: &str,
    ) {
        let app = AppName::try_new("myapp").unwrap();
        let manifest = Manifest {
            name: app.clone(),
            expose: vec![Expose {
                proto: Proto::Http,
                port,
            }],
            needs: Default::default(),
            health: None,
            runners: vec![],
            env: manifest_env.clone(),
            init: true,
        };
        let env = build_env(&app, &manifest, app_url, &admin, &services);
        assert_eq!(env["PORT"], port.to_string());
        assert_eq!(env["APP_NAME"], "myapp");
        assert_eq!(env["APP_URL"], app_url);
        for (k, v) in &env {
            if ["PORT", "APP_NAME", "APP_URL"].contains(&k.as_str()) {
                continue;
            }
            let expected = services
                .get(k)
                .or_else(|| admin.get(k))
                .or_else(|| manifest_env.get(k));
            assert_eq!(Some(v), expected, "{k}");
        }
        let inputs = manifest_env
            .keys()
            .chain(admin.keys())
            .chain(services.keys());
        for k in inputs {
            assert!(env.contains_key(k), "{k} dropped");
        }
    }

    /// Variable names, the injected ones among them so the layering is exercised.
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-C_]{1,3}",
            Just("PORT".to_owned()),
            Just("APP_URL".to_owned()),
            Just("APP_NAME".to_owned()),
            Just("DATABASE_URL".to_owned()),
        ]
    }

    fn vars() -> impl Strategy<Value = BTreeMap<String, String>> {
        proptest::collection::btree_map(key(), "\\PC{0,12}", 0..6)
    }

    proptest! {
        #![proptest_config(crate::model::prop_config())]

        #[test]
        fn prop_build_env_layers(
            port in 1u16..,
            manifest_env in vars(),
            admin in vars(),
            services in vars(),
            app_url in "\\PC{0,30}",
        ) {
            check_build(port, manifest_env, admin, services, &app_url);
        }

        #[test]
        fn prop_unset_matches_is_a_glob(pattern in "[AB_*]{0,8}", name in "[AB_]{0,8}") {
            prop_assert_eq!(
                unset_matches(&pattern, &name),
                glob(pattern.as_bytes(), name.as_bytes()),
                "{:?} {:?}", pattern, name
            );
        }

        #[test]
        fn prop_admin_checks_of_any_text(
            env in proptest::collection::btree_map("\\PC{0,10}", "\\PC{0,20}", 0..4),
            pattern in "\\PC{0,12}",
        ) {
            // No panic; an accepted name is one `check_unset` accepts and matches exactly.
            if check_admin_env(&env).is_ok() {
                for name in env.keys() {
                    prop_assert!(check_unset(name).is_ok());
                    prop_assert!(unset_matches(name, name));
                }
            }
            let _ = check_unset(&pattern);
        }

        #[test]
        fn prop_redact_hides_url_passwords(
            user in "[a-z]{1,8}",
            password in "[A-Za-z0-9@:]{11,20}",
            text in "\\PC{0,40}",
        ) {
            let url = format!("mysql://{user}:{password}@db:3306/x");
            let env = BTreeMap::from([("DATABASE_URL".to_owned(), url)]);
            let secrets = url_passwords(&env);
            let line = format!("{text}{}{text}", secrets.first().cloned().unwrap_or_default());
            let redacted = redact(&line, &secrets);
            for s in &secrets {
                prop_assert!(!redacted.contains(s.as_str()), "{:?} in {:?}", s, redacted);
            }
        }
    }
}
