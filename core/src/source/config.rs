//! The execution parameters of an image config (the `config` object of the OCI image config,
//! image-spec config.md), read through `oci-spec`'s `Config` type: what `ct run` starts when the
//! command line does not say otherwise. Only `config` is read — the rest of the document
//! (`rootfs`, `history`, …) is checked elsewhere or not needed, and may be absent. The bytes are
//! untrusted JSON of a bounded size; a field of the wrong type is refused, not skipped.

use oci_spec::image::Config;
use serde::Deserialize;

/// The part of an image config read here; other fields are ignored.
#[derive(Deserialize)]
struct Document {
    #[serde(default)]
    config: Option<Config>,
}

/// The defaults an image gives a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunDefaults {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `NAME=VALUE` entries, in the image's order.
    pub env: Vec<String>,
    /// `None` when absent or empty.
    pub user: Option<String>,
    /// `None` when absent or empty.
    pub working_dir: Option<String>,
    /// `PORT/PROTO` keys of `ExposedPorts`, sorted.
    pub exposed_ports: Vec<String>,
    /// `Labels`, by name.
    pub labels: std::collections::BTreeMap<String, String>,
}

impl RunDefaults {
    /// Read the defaults from an image config's bytes (the caller bounds and hashes them).
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let doc: Document = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let Some(c) = doc.config else {
            return Ok(Self::default());
        };
        let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        let mut exposed_ports = c.exposed_ports().clone().unwrap_or_default();
        exposed_ports.sort();
        Ok(Self {
            entrypoint: c.entrypoint().clone().unwrap_or_default(),
            cmd: c.cmd().clone().unwrap_or_default(),
            env: c.env().clone().unwrap_or_default(),
            user: non_empty(c.user()),
            working_dir: non_empty(c.working_dir()),
            exposed_ports,
            labels: c.labels().clone().unwrap_or_default().into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_config_object_only() {
        let d = RunDefaults::parse(
            br#"{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/bin/sh","-c"],
            "Cmd":["echo hi"],"Env":["A=1","PATH=/bin"],"User":"","WorkingDir":"/srv",
            "ExposedPorts":{"8080/tcp":{},"53/udp":{}},"Labels":{"a":"b"},"ArgsEscaped":true}}"#,
        )
        .unwrap();
        assert_eq!(d.entrypoint, ["/bin/sh", "-c"]);
        assert_eq!(d.cmd, ["echo hi"]);
        assert_eq!(d.env, ["A=1", "PATH=/bin"]);
        assert_eq!(d.user, None);
        assert_eq!(d.working_dir.as_deref(), Some("/srv"));
        assert_eq!(d.exposed_ports, ["53/udp", "8080/tcp"]);
        // No `config`, or nulls: no defaults. No history or rootfs is needed.
        assert_eq!(RunDefaults::parse(b"{}").unwrap(), RunDefaults::default());
        assert_eq!(
            RunDefaults::parse(br#"{"config":{"Cmd":null,"Env":null,"ExposedPorts":null}}"#)
                .unwrap(),
            RunDefaults::default()
        );
    }

    #[test]
    fn wrong_types_are_refused() {
        for bad in [
            &br#"{"config":{"Cmd":"sh"}}"#[..],
            br#"{"config":{"Env":[1]}}"#,
            br#"{"config":{"User":0}}"#,
            br#"{"config":[]}"#,
            b"",
        ] {
            assert!(
                RunDefaults::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
