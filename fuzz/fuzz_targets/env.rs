//! The env builder: injected variables always win, services beat the admin, who beats the
//! manifest, nothing is dropped; the admin checks and `unset` patterns never panic.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use minicloud::apps::env::{build_env, check_admin_env, check_unset, unset_matches};
use minicloud::model::manifest::{Expose, Manifest, Proto};
use minicloud::model::name::AppName;

type Vars = BTreeMap<String, String>;

fuzz_target!(|input: (u16, Vars, Vars, Vars, String, String)| {
    let (port, manifest_env, admin, services, app_url, pattern) = input;
    let port = port.max(1);
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
    let env = build_env(&app, &manifest, &app_url, &admin, &services);
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
        assert_eq!(Some(v), expected);
    }
    for k in manifest_env
        .keys()
        .chain(admin.keys())
        .chain(services.keys())
    {
        assert!(env.contains_key(k));
    }
    if check_admin_env(&admin).is_ok() {
        for name in admin.keys() {
            assert!(unset_matches(name, name));
        }
    }
    if check_unset(&pattern).is_ok() {
        for name in env.keys() {
            let _ = unset_matches(&pattern, name);
        }
    }
});
