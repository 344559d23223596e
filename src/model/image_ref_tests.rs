//! Table-driven tests for `ImageRef` (kept beside the module, in their own file for length).

use super::*;

const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn digest_ref(prefix: &str) -> String {
    format!("{prefix}@{D}")
}

#[test]
fn accepted_forms_normalise_to_canonical() {
    let cases: Vec<(String, String)> = vec![
        // Docker Hub, short forms.
        ("nginx".into(), "docker.io/library/nginx:latest".into()),
        ("nginx:1.25".into(), "docker.io/library/nginx:1.25".into()),
        ("user/app".into(), "docker.io/user/app:latest".into()),
        ("user/app:tag".into(), "docker.io/user/app:tag".into()),
        (
            "user/app:V1.2_rc-3".into(),
            "docker.io/user/app:V1.2_rc-3".into(),
        ),
        ("  user/app:tag \n".into(), "docker.io/user/app:tag".into()),
        (
            "docker.io/user/app:tag".into(),
            "docker.io/user/app:tag".into(),
        ),
        (
            "docker.io/nginx".into(),
            "docker.io/library/nginx:latest".into(),
        ),
        (
            "index.docker.io/user/app".into(),
            "docker.io/user/app:latest".into(),
        ),
        (
            "docker.io/library/nginx:1".into(),
            "docker.io/library/nginx:1".into(),
        ),
        (
            "user/my-app.web__x".into(),
            "docker.io/user/my-app.web__x:latest".into(),
        ),
        ("user/a---b".into(), "docker.io/user/a---b:latest".into()),
        ("org/team/app:1".into(), "docker.io/org/team/app:1".into()),
        // Docker Hub page addresses.
        (
            "https://hub.docker.com/r/user/app".into(),
            "docker.io/user/app:latest".into(),
        ),
        (
            "https://hub.docker.com/r/user/app/".into(),
            "docker.io/user/app:latest".into(),
        ),
        (
            "http://hub.docker.com/r/user/app".into(),
            "docker.io/user/app:latest".into(),
        ),
        (
            "HTTPS://Hub.Docker.com/r/user/app".into(),
            "docker.io/user/app:latest".into(),
        ),
        (
            "https://hub.docker.com/r/user/app/tags".into(),
            "docker.io/user/app:latest".into(),
        ),
        (
            "https://hub.docker.com/r/user/app/tags?name=1.2".into(),
            "docker.io/user/app:1.2".into(),
        ),
        (
            "https://hub.docker.com/r/user/app/tags?page=1&name=1.2&ordering=name".into(),
            "docker.io/user/app:1.2".into(),
        ),
        (
            "https://hub.docker.com/r/user/app/tags?name=".into(),
            "docker.io/user/app:latest".into(),
        ),
        (
            "https://hub.docker.com/r/user/app:1.2".into(),
            "docker.io/user/app:1.2".into(),
        ),
        (
            "https://hub.docker.com/r/user/app/general".into(),
            "docker.io/user/app:latest".into(),
        ),
        (
            "https://hub.docker.com/r/user/app#readme".into(),
            "docker.io/user/app:latest".into(),
        ),
        (
            "hub.docker.com/_/nginx".into(),
            "docker.io/library/nginx:latest".into(),
        ),
        (
            "https://hub.docker.com/_/nginx?tab=tags".into(),
            "docker.io/library/nginx:latest".into(),
        ),
        (
            "https://hub.docker.com/_/nginx/tags?name=1.25".into(),
            "docker.io/library/nginx:1.25".into(),
        ),
        (
            "https://www.hub.docker.com/_/nginx".into(),
            "docker.io/library/nginx:latest".into(),
        ),
        (
            "https://hub.docker.com/repository/docker/user/app/general".into(),
            "docker.io/user/app:latest".into(),
        ),
        (
            "https://hub.docker.com/layers/library/nginx/1.25/images/sha256-abcdef".into(),
            "docker.io/library/nginx:1.25".into(),
        ),
        (
            "https://hub.docker.com/layers/user/app/v2".into(),
            "docker.io/user/app:v2".into(),
        ),
        // Other registries.
        (
            "registry.host:5000/app:tag".into(),
            "registry.host:5000/app:tag".into(),
        ),
        (
            "Registry.Example.COM/team/app".into(),
            "registry.example.com/team/app:latest".into(),
        ),
        (
            "ghcr.io/owner/app:1.0".into(),
            "ghcr.io/owner/app:1.0".into(),
        ),
        (
            "localhost:5000/app".into(),
            "localhost:5000/app:latest".into(),
        ),
        ("localhost/app".into(), "localhost/app:latest".into()),
        (
            "127.0.0.1:5000/ns/app:v1".into(),
            "127.0.0.1:5000/ns/app:v1".into(),
        ),
        (
            "registry.host:65535/app".into(),
            "registry.host:65535/app:latest".into(),
        ),
        // Digests.
        (digest_ref("user/app"), digest_ref("docker.io/user/app")),
        (digest_ref("nginx"), digest_ref("docker.io/library/nginx")),
        (
            digest_ref("user/app:1.2"),
            digest_ref("docker.io/user/app:1.2"),
        ),
        (
            digest_ref("127.0.0.1:5000/ns/app:v1"),
            digest_ref("127.0.0.1:5000/ns/app:v1"),
        ),
        (
            digest_ref("localhost:5000/app"),
            digest_ref("localhost:5000/app"),
        ),
    ];
    for (input, canonical) in cases {
        let r = ImageRef::parse(&input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(r.canonical(), canonical, "input {input:?}");
        assert_eq!(r.to_string(), canonical);
        // Canonical form is a fixed point.
        let again = ImageRef::parse(&canonical).unwrap_or_else(|e| panic!("{canonical:?}: {e}"));
        assert_eq!(again, r, "reparse of {canonical:?}");
    }
}

#[test]
fn fields_are_split() {
    let r = ImageRef::parse(&digest_ref("127.0.0.1:5000/ns/app:v1")).unwrap();
    assert_eq!(r.registry(), "127.0.0.1:5000");
    assert_eq!(r.repository(), "ns/app");
    assert_eq!(r.tag(), Some("v1"));
    assert_eq!(r.digest(), Some(D));
    assert_eq!(r.name(), "127.0.0.1:5000/ns/app");
    assert!(!r.is_docker_hub());

    let r = ImageRef::parse("nginx").unwrap();
    assert_eq!(r.registry(), "docker.io");
    assert_eq!(r.repository(), "library/nginx");
    assert_eq!(r.tag(), Some("latest"));
    assert_eq!(r.digest(), None);
    assert!(r.is_docker_hub());

    // A digest alone does not invent a tag.
    let r = ImageRef::parse(&digest_ref("user/app")).unwrap();
    assert_eq!(r.tag(), None);
}

#[test]
fn rejected_forms() {
    use ImageRefError as E;
    type Check = fn(&ImageRefError) -> bool;
    let long_repo = format!("user/{}", "a".repeat(260));
    let long_tag = format!("user/app:{}", "t".repeat(129));
    let cases: Vec<(&str, Check)> = vec![
        ("", |e| matches!(e, E::Empty)),
        ("   ", |e| matches!(e, E::Empty)),
        ("x y", |e| matches!(e, E::Whitespace { .. })),
        ("user/app:\ttag", |e| matches!(e, E::Whitespace { .. })),
        ("User/app", |e| matches!(e, E::BadRepository { .. })),
        ("user/App", |e| matches!(e, E::BadRepository { .. })),
        ("NGINX", |e| matches!(e, E::BadRepository { .. })),
        ("user//app", |e| matches!(e, E::BadRepository { .. })),
        ("/app", |e| matches!(e, E::BadRepository { .. })),
        ("user/app/", |e| matches!(e, E::BadRepository { .. })),
        ("user/-app", |e| matches!(e, E::BadRepository { .. })),
        ("user/app.", |e| matches!(e, E::BadRepository { .. })),
        ("user/a..b", |e| matches!(e, E::BadRepository { .. })),
        ("user/a___b", |e| matches!(e, E::BadRepository { .. })),
        ("user/a._b", |e| matches!(e, E::BadRepository { .. })),
        ("registry.host:5000/", |e| {
            matches!(e, E::BadRepository { .. })
        }),
        (":tag", |e| matches!(e, E::BadRepository { .. })),
        ("user/app:", |e| matches!(e, E::BadTag { .. })),
        ("user/app:.x", |e| matches!(e, E::BadTag { .. })),
        ("user/app:-x", |e| matches!(e, E::BadTag { .. })),
        ("user/app:a+b", |e| matches!(e, E::BadTag { .. })),
        ("user/app:1/2", |e| matches!(e, E::BadTag { .. })),
        (&long_tag, |e| matches!(e, E::BadTag { .. })),
        ("user/app@sha256:abc", |e| matches!(e, E::BadDigest { .. })),
        ("user/app@", |e| matches!(e, E::BadDigest { .. })),
        ("user/app@md5:0123456789abcdef0123456789abcdef", |e| {
            matches!(e, E::BadDigest { .. })
        }),
        (
            "user/app@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
            |e| matches!(e, E::BadDigest { .. }),
        ),
        ("registry.host:0/app", |e| matches!(e, E::BadPort { .. })),
        ("registry.host:65536/app", |e| {
            matches!(e, E::BadPort { .. })
        }),
        ("registry.host:abc/app", |e| matches!(e, E::BadPort { .. })),
        ("registry.host:/app", |e| matches!(e, E::BadPort { .. })),
        ("registry.host:+5000/app", |e| {
            matches!(e, E::BadPort { .. })
        }),
        ("bad_host.com/app", |e| matches!(e, E::BadHost { .. })),
        ("-bad.com/app", |e| matches!(e, E::BadHost { .. })),
        ("bad..com/app", |e| matches!(e, E::BadHost { .. })),
        (":5000/app", |e| matches!(e, E::BadHost { .. })),
        ("http://registry.example.com/app:tag", |e| {
            matches!(e, E::NotHubUrl { .. })
        }),
        ("https://ghcr.io/owner/app", |e| {
            matches!(e, E::NotHubUrl { .. })
        }),
        ("ftp://hub.docker.com/r/user/app", |e| {
            matches!(e, E::NotHubUrl { .. })
        }),
        ("https://hub.docker.com/", |e| {
            matches!(e, E::BadHubUrl { .. })
        }),
        ("https://hub.docker.com/search?q=nginx", |e| {
            matches!(e, E::BadHubUrl { .. })
        }),
        ("https://hub.docker.com/r/user", |e| {
            matches!(e, E::BadHubUrl { .. })
        }),
        ("https://hub.docker.com/r/user/app/tags/extra", |e| {
            matches!(e, E::BadHubUrl { .. })
        }),
        ("https://hub.docker.com/r/user/app/nonsense", |e| {
            matches!(e, E::BadHubUrl { .. })
        }),
        ("https://hub.docker.com/u/user", |e| {
            matches!(e, E::BadHubUrl { .. })
        }),
        ("https://hub.docker.com/r/User/App", |e| {
            matches!(e, E::BadRepository { .. })
        }),
        ("https://hub.docker.com/r/user/app/tags?name=a+b", |e| {
            matches!(e, E::BadTag { .. })
        }),
        (&long_repo, |e| matches!(e, E::TooLong { .. })),
    ];
    for (input, check) in cases {
        match ImageRef::parse(input) {
            Ok(r) => panic!("{input:?} was accepted as {r}"),
            Err(e) => assert!(check(&e), "{input:?} gave {e:?}"),
        }
    }
}

#[test]
fn error_messages_quote_input_and_show_an_accepted_form() {
    let e = ImageRef::parse("x y").unwrap_err().to_string();
    assert_eq!(
        e,
        "not an image reference: 'x y' contains whitespace (expected e.g. 'user/app:tag' or \
         'registry.example.com:5000/app:tag' or 'https://hub.docker.com/r/user/app')"
    );
    for input in [
        "User/App",
        "user/app:.x",
        "registry.host:99999/app",
        "http://example.com/app",
    ] {
        let e = ImageRef::parse(input).unwrap_err().to_string();
        assert!(e.contains(&format!("'{input}'")), "{e}");
        assert!(e.contains("expected e.g. 'user/app:tag'"), "{e}");
    }
    let e = ImageRef::parse("https://hub.docker.com/u/x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("https://hub.docker.com/r/user/app"), "{e}");
}

#[test]
fn pull_reference_prefers_digest_and_always_names_a_tag() {
    assert_eq!(
        ImageRef::parse("nginx").unwrap().pull_reference(),
        "docker.io/library/nginx:latest"
    );
    assert_eq!(
        ImageRef::parse("localhost:5000/app:v1")
            .unwrap()
            .pull_reference(),
        "localhost:5000/app:v1"
    );
    assert_eq!(
        ImageRef::parse(&digest_ref("user/app:1.2"))
            .unwrap()
            .pull_reference(),
        digest_ref("docker.io/user/app")
    );
}

#[test]
fn with_tag_and_with_digest() {
    let r = ImageRef::parse("user/app:1").unwrap();
    let pinned = r.with_digest(D).unwrap();
    assert_eq!(pinned.canonical(), digest_ref("docker.io/user/app:1"));
    let retagged = pinned.with_tag("2").unwrap();
    assert_eq!(retagged.canonical(), "docker.io/user/app:2");
    assert!(r.with_tag("bad tag").is_err());
    assert!(r.with_digest("sha256:nothex").is_err());
}

#[test]
fn serde_round_trip_validates() {
    let r: ImageRef = serde_json::from_str("\"user/app\"").unwrap();
    assert_eq!(
        serde_json::to_string(&r).unwrap(),
        "\"docker.io/user/app:latest\""
    );
    assert!(serde_json::from_str::<ImageRef>("\"User/App\"").is_err());
}
