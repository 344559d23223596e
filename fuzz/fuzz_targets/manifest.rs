//! The manifest parser: no panic; every error line names the file; an accepted manifest
//! re-validates when written out as JSON and as YAML.
#![no_main]

use libfuzzer_sys::fuzz_target;
use minicloud::model::manifest::parse;

const FILES: [&str; 3] = [
    "/cloud_manifest.yml",
    "/cloud_manifest.yaml",
    "/cloud_manifest.json",
];

fuzz_target!(|input: (u8, &str)| {
    let (which, text) = input;
    let file = FILES[usize::from(which) % FILES.len()];
    match parse(file, text) {
        Ok(m) => {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(parse("/cloud_manifest.json", &json).as_ref(), Ok(&m));
            let yaml = serde_yaml_ng::to_string(&m).unwrap();
            assert_eq!(parse("/cloud_manifest.yml", &yaml).as_ref(), Ok(&m));
        }
        Err(e) => {
            for line in e.lines() {
                assert!(line.starts_with(file), "{line:?}");
            }
        }
    }
});
