//! Image references as users write them (`[docker://]HOST[:PORT]/REPO[:TAG][@sha256:…]`), parsed
//! and normalised the way docker, podman and skopeo do: a first component without `.` or `:`
//! (and not `localhost`) is a Docker Hub repository (`docker.io`, `library/` for one component).

use cerro_core::Sha256Digest;
use std::fmt;

/// The registry assumed when a reference names none (Docker Hub, as every container tool does).
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// Where Docker Hub's registry API really answers.
const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// Longest repository name (distribution's limit).
const MAX_REPOSITORY_LEN: usize = 255;
/// Longest tag (OCI distribution spec).
const MAX_TAG_LEN: usize = 128;

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The registry as written (`127.0.0.1:5000`, `quay.io`), or `docker.io`.
    pub registry: String,
    /// The repository path (`team/app`, `library/busybox`).
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Sha256Digest>,
}

impl Reference {
    /// Parse `[docker://]HOST/REPO[:TAG][@sha256:HEX]`. Errors say what is wrong with it.
    pub fn parse(s: &str) -> Result<Self, String> {
        let text = s.strip_prefix("docker://").unwrap_or(s);
        if text.is_empty() {
            return Err("the image reference is empty".into());
        }
        let (rest, digest) = match text.split_once('@') {
            Some((r, d)) => {
                let d = Sha256Digest::parse(d).map_err(|_| {
                    format!(
                        "{s:?}: {d:?} is not a sha256 digest (sha256: and 64 lowercase hex digits)"
                    )
                })?;
                (r, Some(d))
            }
            None => (text, None),
        };
        // A tag is after the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if registry.is_empty() || registry.chars().any(|c| c.is_whitespace() || c == '@') {
            return Err(format!("{s:?}: {registry:?} is not a registry host"));
        }
        check_repository(&repository).map_err(|e| format!("{s:?}: {e}"))?;
        if let Some(t) = &tag {
            check_tag(t).map_err(|e| format!("{s:?}: {e}"))?;
        }
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host the API is reached on (Docker Hub's API lives elsewhere than its name).
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }

    /// What to ask the registry for: the digest when given, else the tag, else `latest`.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Self {
        Self {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Repository path components: lowercase letters and digits, separated by `.`, `_`, `__` or
/// runs of `-` (the distribution grammar, slightly simplified: separators may not lead or trail).
fn check_repository(r: &str) -> Result<(), String> {
    if r.is_empty() {
        return Err("the repository name is empty".into());
    }
    if r.len() > MAX_REPOSITORY_LEN {
        return Err(format!(
            "the repository name is longer than {MAX_REPOSITORY_LEN} characters"
        ));
    }
    for c in r.split('/') {
        let ok = !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && c.as_bytes()[0].is_ascii_alphanumeric()
            && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric();
        if !ok {
            return Err(format!("repository component {c:?} must be lowercase letters and digits, separated by '.', '_' or '-'"));
        }
    }
    Ok(())
}

/// A tag: 1–128 of `A-Z a-z 0-9 _ . -`, not starting with `.` or `-`.
pub fn check_tag(t: &str) -> Result<(), String> {
    let ok = !t.is_empty()
        && t.len() <= MAX_TAG_LEN
        && (t.as_bytes()[0].is_ascii_alphanumeric() || t.as_bytes()[0] == b'_')
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {t:?} must be 1-{MAX_TAG_LEN} of A-Z a-z 0-9 _ . - and not start with '.' or '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    #[test]
    fn local_registry_with_port_and_tag() {
        let r = p("127.0.0.1:5000/team/app:1.2");
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("1.2"));
        assert_eq!(r.api_host(), "127.0.0.1:5000");
        assert_eq!(r.to_string(), "127.0.0.1:5000/team/app:1.2");
        assert_eq!(p("docker://127.0.0.1:5000/team/app:1.2"), r);
    }

    #[test]
    fn docker_hub_defaults() {
        let r = p("busybox");
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/busybox");
        assert_eq!(r.manifest_reference(), "latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(p("alice/tool:2").repository, "alice/tool");
        assert_eq!(p("localhost/x").registry, "localhost");
    }

    #[test]
    fn digests() {
        let h = "a".repeat(64);
        let r = p(&format!("quay.io/x/y@sha256:{h}"));
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_reference(), format!("sha256:{h}"));
        let r = p(&format!("quay.io/x/y:t@sha256:{h}"));
        assert_eq!(r.tag.as_deref(), Some("t"));
        assert_eq!(r.manifest_reference(), format!("sha256:{h}"));
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "docker://",
            "127.0.0.1:5000/Upper:1",
            "127.0.0.1:5000/x:-tag",
            "127.0.0.1:5000/x@sha256:abc",
            "127.0.0.1:5000/x//y",
            "127.0.0.1:5000/",
            "127.0.0.1:5000/x:",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?}");
        }
    }
}
