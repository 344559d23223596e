//! Image references: no panic; an accepted reference round-trips through its canonical form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use minicloud::model::image_ref::ImageRef;

fuzz_target!(|s: &str| {
    let Ok(r) = ImageRef::parse(s) else {
        return;
    };
    assert!(r.tag().is_some() || r.digest().is_some());
    assert_eq!(r.registry(), r.registry().to_ascii_lowercase());
    assert_eq!(r.repository(), r.repository().to_ascii_lowercase());
    assert_ne!(r.registry(), "index.docker.io");
    if r.is_docker_hub() {
        assert!(r.repository().contains('/'));
    }
    assert_eq!(ImageRef::parse(&r.canonical()).as_ref(), Ok(&r));
    let pulled = ImageRef::parse(&r.pull_reference()).expect("the pull reference parses");
    assert_eq!(pulled.name(), r.name());
});
