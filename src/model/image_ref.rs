//! `ImageRef`: a container image reference parsed from what people paste, in one canonical form.
//!
//! People paste `user/app`, `nginx`, `registry.example.com:5000/app:v1`, a digest, or the
//! address of a Docker Hub page. This module turns all of those into one value whose canonical
//! form is `registry/repository:tag`, `registry/repository@sha256:…` or both, with Docker Hub
//! spelled `docker.io` and official images under `library/`. It owns the grammar (a strict
//! subset of Docker's `distribution/reference` grammar, lowercase only); it does not talk to any
//! registry and does not know about credentials.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Docker Hub's registry name in canonical references.
pub const DOCKER_HUB: &str = "docker.io";

/// The tag Docker assumes when none is given.
pub const DEFAULT_TAG: &str = "latest";

/// Docker's limit for `registry/repository`.
const MAX_NAME_LEN: usize = 255;

/// Docker's limit for a tag.
const MAX_TAG_LEN: usize = 128;

/// Appended to every error so the person sees a form that works.
const EXPECTED: &str =
    "(expected e.g. 'user/app:tag' or 'registry.example.com:5000/app:tag' or 'https://hub.docker.com/r/user/app')";

/// Why a string is not an image reference. Every message quotes the input and ends with an
/// accepted form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    #[error("empty image reference {ex}", ex = EXPECTED)]
    Empty,
    #[error("not an image reference: '{input}' contains whitespace {ex}", ex = EXPECTED)]
    Whitespace { input: String },
    #[error(
        "not an image reference: '{input}': repository '{repository}' must be lowercase a-z, 0-9 \
         in parts separated by '.', '_', '__' or '-', joined by '/' {ex}",
        ex = EXPECTED
    )]
    BadRepository { input: String, repository: String },
    #[error(
        "not an image reference: '{input}': tag '{tag}' must be 1-128 of A-Z a-z 0-9 '_' '.' '-', \
         not starting with '.' or '-' {ex}",
        ex = EXPECTED
    )]
    BadTag { input: String, tag: String },
    #[error(
        "not an image reference: '{input}': digest '{digest}' must be 'sha256:' followed by 64 \
         lowercase hex digits {ex}",
        ex = EXPECTED
    )]
    BadDigest { input: String, digest: String },
    #[error("not an image reference: '{input}': port '{port}' must be a number 1-65535 {ex}", ex = EXPECTED)]
    BadPort { input: String, port: String },
    #[error("not an image reference: '{input}': registry host '{host}' is not a host name {ex}", ex = EXPECTED)]
    BadHost { input: String, host: String },
    #[error(
        "not an image reference: '{input}': only Docker Hub web addresses are understood; for \
         another registry write 'host[:port]/repository:tag' without 'http(s)://' {ex}",
        ex = EXPECTED
    )]
    NotHubUrl { input: String },
    #[error(
        "not an image reference: '{input}': a Docker Hub address looks like \
         'https://hub.docker.com/r/user/app', 'https://hub.docker.com/r/user/app/tags?name=1.2' \
         or 'https://hub.docker.com/_/nginx'"
    )]
    BadHubUrl { input: String },
    #[error(
        "not an image reference: '{input}': name is {len} characters long (at most {MAX_NAME_LEN}) {ex}",
        ex = EXPECTED
    )]
    TooLong { input: String, len: usize },
}

/// A parsed, normalised image reference.
///
/// Invariants: `registry` is a lowercase `host[:port]` (`docker.io` for Docker Hub);
/// `repository` is lowercase path components (`library/x` for Hub official images); at least
/// one of `tag` and `digest` is set (a bare name gets tag `latest`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageRef {
    /// Parses what a person pasted: a reference in any form Docker accepts (lowercase) or a
    /// Docker Hub page address. Surrounding whitespace is ignored.
    pub fn parse(input: &str) -> Result<Self, ImageRefError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(ImageRefError::Empty);
        }
        // Longer than any name, tag and digest together: say so without echoing it all.
        if trimmed.len() > 2 * MAX_NAME_LEN + 256 {
            return Err(ImageRefError::TooLong {
                input: format!("{}…", trimmed.chars().take(60).collect::<String>()),
                len: trimmed.len(),
            });
        }
        if trimmed.chars().any(char::is_whitespace) {
            return Err(ImageRefError::Whitespace {
                input: trimmed.to_owned(),
            });
        }
        if let Some(r) = parse_hub_url(trimmed)? {
            return Ok(r);
        }
        parse_reference(trimmed, trimmed)
    }

    /// `host[:port]`, `docker.io` for Docker Hub.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Repository path inside the registry, e.g. `library/nginx` or `user/app`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// `sha256:<64 hex>`.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    pub fn is_docker_hub(&self) -> bool {
        self.registry == DOCKER_HUB
    }

    /// The one canonical spelling: `registry/repository[:tag][@digest]`.
    pub fn canonical(&self) -> String {
        let mut s = self.name();
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(digest);
        }
        s
    }

    /// The same repository at another tag. The digest is dropped: it pinned the old content.
    pub fn with_tag(&self, tag: &str) -> Result<Self, ImageRefError> {
        check_tag(tag, tag)?;
        Ok(Self {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same reference pinned to `digest` (`sha256:…`). The tag is kept for display.
    pub fn with_digest(&self, digest: &str) -> Result<Self, ImageRefError> {
        check_digest(digest, digest)?;
        Ok(Self {
            digest: Some(digest.to_owned()),
            ..self.clone()
        })
    }

    /// What to hand the Docker engine as `fromImage` (with no separate `tag`) to pull, and as
    /// the image of a container: `registry/repository@digest` when pinned, else
    /// `registry/repository:tag`.
    ///
    /// The engine normalises `docker.io/library/x` itself, so Hub images are given in full. A
    /// digest wins over the tag: a `name:tag@digest` reference is accepted by `docker pull`
    /// through the CLI (which drops the tag) but older engines' API handlers do not all agree
    /// on it, and the digest says strictly more. We always send a tag or a digest because
    /// `fromImage` without either pulls every tag of the repository.
    pub fn pull_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => format!("{}@{}", self.name(), d),
            (None, Some(t)) => format!("{}:{}", self.name(), t),
            // Unreachable by construction; fall back to Docker's own default.
            (None, None) => format!("{}:{}", self.name(), DEFAULT_TAG),
        }
    }
}

/// Parses `[registry/]repository[:tag][@digest]`. `input` is the original text for messages.
fn parse_reference(reference: &str, input: &str) -> Result<ImageRef, ImageRefError> {
    let (rest, digest) = match reference.rsplit_once('@') {
        Some((rest, digest)) => {
            check_digest(digest, input)?;
            (rest, Some(digest.to_owned()))
        }
        None => (reference, None),
    };

    // Docker's rule: the first component is a registry if it has a '.' or ':' or is
    // `localhost`; otherwise the whole thing is a Docker Hub repository.
    let (registry, path) = match rest.split_once('/') {
        Some((first, path)) if first.contains(['.', ':']) || first == "localhost" => {
            (normalise_registry(first, input)?, path)
        }
        _ => (DOCKER_HUB.to_owned(), rest),
    };

    // With the registry (and its port) split off, a ':' can only start the tag.
    let (repository, tag) = match path.rsplit_once(':') {
        Some((repo, tag)) => {
            check_tag(tag, input)?;
            (repo, Some(tag.to_owned()))
        }
        None => (path, None),
    };

    check_repository(repository, input)?;
    let repository = if registry == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository.to_owned()
    };

    let len = registry.len() + 1 + repository.len();
    if len > MAX_NAME_LEN {
        return Err(ImageRefError::TooLong {
            // Only the start: an error never echoes a huge input.
            input: format!("{}…", input.chars().take(60).collect::<String>()),
            len,
        });
    }

    let tag = match (tag, &digest) {
        (None, None) => Some(DEFAULT_TAG.to_owned()),
        (tag, _) => tag,
    };
    Ok(ImageRef {
        registry,
        repository,
        tag,
        digest,
    })
}

/// Checks `host[:port]` and returns it lowercased, with Docker Hub's aliases folded into
/// `docker.io` as Docker does.
fn normalise_registry(registry: &str, input: &str) -> Result<String, ImageRefError> {
    let (host, port) = match registry.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (registry, None),
    };
    let host = host.to_ascii_lowercase();
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !host_ok {
        return Err(ImageRefError::BadHost {
            input: input.to_owned(),
            host,
        });
    }
    if let Some(port) = port {
        let ok = !port.is_empty()
            && port.chars().all(|c| c.is_ascii_digit())
            && matches!(port.parse::<u32>(), Ok(1..=65535));
        if !ok {
            return Err(ImageRefError::BadPort {
                input: input.to_owned(),
                port: port.to_owned(),
            });
        }
        return Ok(format!("{host}:{port}"));
    }
    if host == "index.docker.io" {
        return Ok(DOCKER_HUB.to_owned());
    }
    Ok(host)
}

/// Path components: `[a-z0-9]+` joined by `.`, `_`, `__` or `-+`; components joined by `/`.
fn check_repository(repository: &str, input: &str) -> Result<(), ImageRefError> {
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
        if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return false;
        }
        // Walk separator runs: a run of '-' is fine, '.' and '_' only alone, '__' allowed.
        let mut i = 0;
        while i < b.len() {
            if alnum(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !alnum(b[i]) {
                i += 1;
            }
            let sep = &c[start..i];
            let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
            if !ok {
                return false;
            }
        }
        true
    };
    if repository.is_empty() || !repository.split('/').all(component_ok) {
        return Err(ImageRefError::BadRepository {
            input: input.to_owned(),
            repository: repository.to_owned(),
        });
    }
    Ok(())
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn check_tag(tag: &str, input: &str) -> Result<(), ImageRefError> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let ok = tag.len() <= MAX_TAG_LEN
        && tag.chars().next().is_some_and(word)
        && tag.chars().all(|c| word(c) || c == '.' || c == '-');
    if !ok {
        return Err(ImageRefError::BadTag {
            input: input.to_owned(),
            tag: tag.to_owned(),
        });
    }
    Ok(())
}

/// Only sha256 digests: that is what registries serve and what `RepoDigests` reports.
fn check_digest(digest: &str, input: &str) -> Result<(), ImageRefError> {
    let ok = digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if !ok {
        return Err(ImageRefError::BadDigest {
            input: input.to_owned(),
            digest: digest.to_owned(),
        });
    }
    Ok(())
}

/// Recognises web addresses. Returns `Ok(None)` when `input` is not a URL at all (then it is
/// parsed as a reference), an error for URLs that are not Docker Hub repository pages.
///
/// Accepted Hub page forms, each one a page a person can have open when they copy the address:
/// - `hub.docker.com/_/nginx` (official images), `hub.docker.com/r/user/app` (others), each
///   optionally followed by a tab (`/tags`, `/general`, …).
/// - `…/tags?name=1.2`: the tags tab after searching for a tag; `name` is only a search
///   filter on Hub, but it is what people copy to mean "this tag", so a valid tag is taken.
/// - `hub.docker.com/repository/docker/user/app`: the owner's own view of a repository.
/// - `hub.docker.com/layers/user/app/1.2/images/sha256-…`: the page of one tag; the tag is
///   taken and the digest ignored, because it names one platform's manifest, not the
///   multi-platform index, and pinning it could pin the wrong CPU architecture.
/// - `…/r/user/app:1.2`: not a real Hub address, but people append a tag to the page address
///   and the meaning is unambiguous.
fn parse_hub_url(input: &str) -> Result<Option<ImageRef>, ImageRefError> {
    let (had_scheme, rest) = match input.split_once("://") {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
        {
            (true, rest)
        }
        Some(_) => {
            return Err(ImageRefError::NotHubUrl {
                input: input.to_owned(),
            })
        }
        None => (false, input),
    };
    let (host, path_and_query) = rest.split_once('/').unwrap_or((rest, ""));
    let host_lower = host.to_ascii_lowercase();
    let is_hub = host_lower == "hub.docker.com" || host_lower == "www.hub.docker.com";
    if !is_hub {
        return if had_scheme {
            Err(ImageRefError::NotHubUrl {
                input: input.to_owned(),
            })
        } else {
            Ok(None)
        };
    }
    let bad = || ImageRefError::BadHubUrl {
        input: input.to_owned(),
    };

    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, q),
        None => (path_and_query, ""),
    };
    let path = path.split('#').next().unwrap_or("");
    let query = query.split('#').next().unwrap_or("");
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();

    const TABS: &[&str] = &[
        "general",
        "tags",
        "builds",
        "dockerfile",
        "collaborators",
        "webhooks",
        "settings",
    ];
    let (repository, tab_rest, layers_tag): (String, &[&str], Option<&str>) =
        match segments.as_slice() {
            ["_", repo, rest @ ..] => (format!("library/{repo}"), rest, None),
            ["r", ns, repo, rest @ ..] => (format!("{ns}/{repo}"), rest, None),
            ["repository", "docker", ns, repo, rest @ ..] => (format!("{ns}/{repo}"), rest, None),
            // What follows the tag (`images/sha256-…`) is deliberately ignored, see above.
            ["layers", ns, repo, tag, ..] => {
                let ns = if *ns == "_" { "library" } else { ns };
                (format!("{ns}/{repo}"), &[], Some(*tag))
            }
            _ => return Err(bad()),
        };
    match tab_rest {
        [] => {}
        [tab] if TABS.contains(tab) => {}
        _ => return Err(bad()),
    }

    let query_tag = if tab_rest == ["tags"] {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix("name="))
            .filter(|t| !t.is_empty())
    } else {
        None
    };
    // `repository` may carry a pasted `:tag`; parse_reference handles and validates it.
    let mut r = parse_reference(&format!("{DOCKER_HUB}/{repository}"), input)?;
    if let Some(tag) = layers_tag.or(query_tag) {
        let tag = percent_encoding::percent_decode_str(tag)
            .decode_utf8()
            .map_err(|_| bad())?;
        check_tag(&tag, input)?;
        r.tag = Some(tag.into_owned());
    }
    Ok(Some(r))
}

impl FromStr for ImageRef {
    type Err = ImageRefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for ImageRef {
    type Error = ImageRefError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ImageRef> for String {
    fn from(r: ImageRef) -> String {
        r.canonical()
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

#[cfg(test)]
#[path = "image_ref_tests.rs"]
mod tests;

/// Property tests: the stable stand-in for `fuzz/fuzz_targets/image_ref.rs`, with the same
/// properties, over arbitrary text and over reference-shaped strings.
#[cfg(test)]
mod prop_tests {
    use super::*;
    use proptest::prelude::*;

    /// What `ImageRef::parse` must hold for any input: no panic, and an accepted reference is
    /// one canonical value: its canonical form and its pull reference parse back to it.
    pub(super) fn check(input: &str) {
        let Ok(r) = ImageRef::parse(input) else {
            return;
        };
        assert!(r.tag().is_some() || r.digest().is_some(), "{input:?}");
        // The type's invariants: one spelling of every registry and repository.
        assert_eq!(r.registry(), r.registry().to_ascii_lowercase(), "{input:?}");
        assert_eq!(
            r.repository(),
            r.repository().to_ascii_lowercase(),
            "{input:?}"
        );
        assert_ne!(r.registry(), "index.docker.io", "{input:?}");
        if r.is_docker_hub() {
            assert!(r.repository().contains('/'), "{input:?}");
        }
        let canonical = r.canonical();
        assert_eq!(
            ImageRef::parse(&canonical).as_ref(),
            Ok(&r),
            "{input:?} → {canonical:?}"
        );
        let pulled = ImageRef::parse(&r.pull_reference()).expect("the pull reference parses");
        assert_eq!(pulled.name(), r.name(), "{input:?}");
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<ImageRef>(&json).unwrap(), r);
    }

    /// `[registry/]path[:tag][@digest]`, mostly valid: registries of either case, with ports.
    const REFERENCE: &str = "(([a-zA-Z0-9-]{1,8}\\.){1,2}[a-zA-Z]{2,4}(:[0-9]{1,5})?/|(localhost|LOCALHOST)(:[0-9]{1,5})?/|(index\\.)?docker\\.io/)?[a-z0-9]{1,8}([._-]{1,2}[a-z0-9]{1,6})?(/[a-z0-9]{1,8}([._-]{1,2}[a-z0-9]{1,6})?){0,2}(:[A-Za-z0-9_][A-Za-z0-9._-]{0,12})?(@sha256:[0-9a-f]{64})?";
    /// The same shape with the characters people get wrong mixed in.
    const NOISY: &str = "([a-zA-Z0-9.-]{1,12}(:[0-9]{0,6})?/)?[a-zA-Z0-9._-]{1,20}(/[a-z0-9._-]{1,12}){0,2}(:[A-Za-z0-9._-]{0,12})?(@sha256:[0-9a-f]{62,65})?";
    /// Docker Hub page addresses and their near misses.
    const HUB_URL: &str = "(https?://)?(www\\.)?hub\\.docker\\.com/(_|r|repository/docker|layers)(/[a-zA-Z0-9._:-]{0,12}){0,5}(\\?name=[a-zA-Z0-9._-]{0,8})?(#[a-z]{0,4})?";

    proptest! {
        #![proptest_config(crate::model::prop_config())]

        #[test]
        fn prop_image_ref_of_any_text(s in "\\PC{0,300}") {
            check(&s);
        }

        #[test]
        fn prop_image_ref_shaped(s in REFERENCE) {
            check(&s);
        }

        #[test]
        fn prop_image_ref_noisy(s in NOISY) {
            check(&s);
        }

        #[test]
        fn prop_image_ref_hub_urls(s in HUB_URL) {
            check(&s);
        }
    }
}
