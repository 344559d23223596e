//! `minicloud manifest check PATH|IMAGE`: lets an app author check their manifest before
//! deploying, from a file or from an image in the local Docker engine.

use std::path::Path;

use crate::docker::{Docker, DockerError};
use crate::model::image_ref::ImageRef;
use crate::model::manifest::{self, Manifest};

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot read {path}: {why}")]
    Read { path: String, why: String },
    #[error("{0}")]
    Invalid(String),
    #[error("'{input}' is neither a file nor an image reference: {why}")]
    NotAnImage { input: String, why: String },
    #[error(transparent)]
    Docker(#[from] DockerError),
}

/// Checks a manifest file, or the manifest inside an image (pulled if the engine lacks it).
pub async fn check(target: &str) -> Result<Manifest, CheckError> {
    let path = Path::new(target);
    let (file_name, text) = if path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|e| CheckError::Read {
            path: target.to_owned(),
            why: e.to_string(),
        })?;
        let name = path.file_name().map_or_else(
            || target.to_owned(),
            |n| format!("/{}", n.to_string_lossy()),
        );
        (name, text)
    } else {
        let image = ImageRef::parse(target).map_err(|e| CheckError::NotAnImage {
            input: target.to_owned(),
            why: e.to_string(),
        })?;
        let docker = Docker::connect().await?;
        match docker.read_manifest(&image).await {
            Ok(found) => found,
            Err(
                e @ (DockerError::NoManifest { .. }
                | DockerError::ManifestUnreadable { .. }
                | DockerError::Unreachable { .. }),
            ) => return Err(e.into()),
            Err(_) => {
                // Most likely not in the engine yet: pull it, then look again.
                docker.pull(&image, None, |_| {}).await?;
                docker.read_manifest(&image).await?
            }
        }
    };
    manifest::parse(&file_name, &text).map_err(|e| CheckError::Invalid(e.lines().join("\n")))
}

/// A few lines a person can check at a glance.
pub fn describe(m: &Manifest) -> String {
    let needs: Vec<&str> = m.needs.iter().map(|n| n.as_str()).collect();
    let runners: Vec<&str> = m.runners.iter().map(|r| r.name.as_str()).collect();
    let none = |v: &[&str]| {
        if v.is_empty() {
            "-".to_owned()
        } else {
            v.join(", ")
        }
    };
    format!(
        "name:     {}\nport:     {} (http)\nhealth:   {}\nneeds:    {}\nrunners:  {}\nenv:      {}\n",
        m.name,
        m.http_port(),
        m.health.as_ref().map_or("any HTTP answer", |h| h.path.as_str()),
        none(&needs),
        none(&runners),
        if m.env.is_empty() {
            "-".to_owned()
        } else {
            m.env.keys().cloned().collect::<Vec<_>>().join(", ")
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_is_checked_with_every_problem_named() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("cloud_manifest.yml");
        std::fs::write(
            &good,
            "name: shop\nexpose:\n- proto: http\n  port: 3000\nneeds: [database]\n",
        )
        .unwrap();
        let m = check(good.to_str().unwrap()).await.unwrap();
        let text = describe(&m);
        assert!(
            text.contains("name:     shop") && text.contains("3000") && text.contains("database")
        );

        let bad = dir.path().join("cloud_manifest.json");
        std::fs::write(
            &bad,
            r#"{"name": "Shop", "expose": [{"proto": "http", "port": 0}]}"#,
        )
        .unwrap();
        let err = check(bad.to_str().unwrap()).await.unwrap_err().to_string();
        assert!(err.contains("cloud_manifest.json"), "{err}");
        assert!(
            err.lines().count() >= 2,
            "every problem on its own line: {err}"
        );
    }
}
