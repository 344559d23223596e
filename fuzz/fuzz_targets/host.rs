//! `Host` / `:authority` and host names: no panic; an accepted host is already normal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use minicloud_proxy::{host_from_authority, HostPattern, Hostname};

fuzz_target!(|data: &[u8]| {
    if let Ok(host) = host_from_authority(data) {
        if host.starts_with('[') {
            assert!(host.ends_with(']'));
        } else {
            let parsed = Hostname::parse(&host).expect("an accepted authority is a host name");
            assert_eq!(parsed.as_str(), host);
            assert_eq!(host_from_authority(host.as_bytes()).unwrap(), host);
        }
    }
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(h) = Hostname::parse(s) {
        assert_eq!(Hostname::parse(h.as_str()).as_ref(), Ok(&h));
    }
    if let Ok(p) = HostPattern::parse(s) {
        assert_eq!(HostPattern::parse(&p.to_string()).as_ref(), Ok(&p));
    }
});
