//! Decoders for what a registry answers, all untrusted: `WWW-Authenticate` challenges
//! (RFC 7235), token service responses, the distribution error JSON, image indexes and
//! descriptors. Pure functions on bytes (the HTTP client is the binary's, DESIGN §2), each
//! total on any input and fuzzed (`tools/fuzz`): errors are values, never panics.

use crate::manifest::Descriptor;
use crate::Sha256Digest;
use serde_json::Value;
use std::collections::BTreeMap;

/// Longest token accepted from a token service (real ones are a few KiB of JWT).
pub const TOKEN_MAX_BYTES: usize = 64 << 10;
/// Most entries looked at in an image index (a bound for a hostile one).
pub const INDEX_MAX_MANIFESTS: usize = 4096;

/// One authentication challenge from `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lower-cased scheme: `basic`, `bearer`, ….
    pub scheme: String,
    /// Parameters with lower-cased names.
    pub params: BTreeMap<String, String>,
}

/// Parse every challenge in a `WWW-Authenticate` value. Tolerant: unparsable parts are skipped.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let b = header.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || b[*i] == b',') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| -> String {
        let start = *i;
        while *i < b.len() && !b" \t,=\"".contains(&b[*i]) {
            *i += 1;
        }
        header[start..*i].to_string()
    };
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            break;
        }
        let word = token(&mut i);
        if word.is_empty() {
            i += 1;
            continue;
        }
        // A word followed by '=' is a parameter of the current challenge; else a new scheme.
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' && !out.is_empty() {
            i = j + 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    // Push whole UTF-8 characters.
                    let ch = header[i..].chars().next().unwrap_or('\u{fffd}');
                    v.push(ch);
                    i += ch.len_utf8();
                }
                i += 1; // closing quote
                v
            } else {
                token(&mut i)
            };
            if let Some(c) = out.last_mut() {
                c.params.insert(word.to_ascii_lowercase(), value);
            }
        } else {
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
        }
    }
    out
}

/// The bearer token in a token service's JSON answer (`token`, else `access_token`): non-empty,
/// at most [`TOKEN_MAX_BYTES`], and only characters allowed in an HTTP header value (a token is
/// sent back as `Authorization: Bearer …`, so it must not be able to add a header line).
pub fn token_from_json(body: &[u8]) -> Result<String, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("no JSON: {e}"))?;
    let t = v
        .get("token")
        .or_else(|| v.get("access_token"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or("no token")?;
    if t.len() > TOKEN_MAX_BYTES {
        return Err(format!("a token of {} bytes", t.len()));
    }
    if !t.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err("a token with characters a header cannot carry".into());
    }
    Ok(t.to_string())
}

/// `CODE: message` from the distribution error JSON (`{"errors":[{"code","message"}]}`).
/// The registry's text is escaped and cut (`crate::text::show_text`): it reaches the terminal
/// and logs.
pub fn error_detail(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let errs = v.get("errors")?.as_array()?;
    let parts: Vec<String> = errs
        .iter()
        .map(|e| {
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
            match (code.is_empty(), msg.is_empty()) {
                (false, false) => format!("{code}: {msg}"),
                (false, true) => code.to_string(),
                _ => msg.to_string(),
            }
        })
        .filter(|s| !s.is_empty())
        .collect();
    (!parts.is_empty()).then(|| crate::text::show_text(&parts.join("; "), 300))
}

/// The `linux/<arch>` entry of an image index.
pub fn pick_platform(index: &[u8], arch: &str) -> Result<Descriptor, String> {
    let v: Value = serde_json::from_slice(index).map_err(|e| format!("not JSON: {e}"))?;
    let list = v
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or("no manifests list")?;
    if list.len() > INDEX_MAX_MANIFESTS {
        return Err(format!("more than {INDEX_MAX_MANIFESTS} manifests"));
    }
    let d = list
        .iter()
        .find(|d| {
            d.pointer("/platform/os").and_then(Value::as_str) == Some("linux")
                && d.pointer("/platform/architecture").and_then(Value::as_str) == Some(arch)
        })
        .ok_or(format!(
            "no linux/{} image in it",
            crate::text::show_text(arch, 64)
        ))?;
    descriptor(d)
}

/// A JSON descriptor's media type, digest and size (the size at most 2^63-1).
pub fn descriptor(d: &Value) -> Result<Descriptor, String> {
    let media_type = d
        .get("mediaType")
        .and_then(Value::as_str)
        .ok_or("a descriptor has no mediaType")?;
    let digest = d
        .get("digest")
        .and_then(Value::as_str)
        .ok_or("a descriptor has no digest")?;
    let digest = Sha256Digest::parse(digest).map_err(|_| {
        format!(
            "digest \"{}\" is not sha256",
            crate::text::show_text(digest, 100)
        )
    })?;
    let size = d
        .get("size")
        .and_then(Value::as_u64)
        .filter(|&s| s <= i64::MAX as u64)
        .ok_or("a descriptor has no size (or one over 2^63-1)")?;
    Ok(Descriptor {
        media_type: media_type.into(),
        digest,
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge_as_docker_hub_sends_it() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#;
        let c = parse_challenges(h);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params["realm"], "https://auth.docker.io/token");
        assert_eq!(c[0].params["service"], "registry.docker.io");
        assert_eq!(c[0].params["scope"], "repository:library/busybox:pull,push");
    }

    #[test]
    fn basic_and_several_challenges() {
        let c = parse_challenges(r#"Basic realm="cerro-test""#);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].params["realm"], "cerro-test");
        let c = parse_challenges(
            r#"Basic realm="a b", Bearer realm="https://t/x",error="insufficient_scope", Negotiate"#,
        );
        let schemes: Vec<&str> = c.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["basic", "bearer", "negotiate"]);
        assert_eq!(c[1].params["error"], "insufficient_scope");
        let c = parse_challenges(r#"Bearer realm=https://t/x , service = "s\"q""#);
        assert_eq!(c[0].params["realm"], "https://t/x");
        assert_eq!(c[0].params["service"], "s\"q");
        assert!(parse_challenges("").is_empty());
        let _ = parse_challenges("=\"=,,\"\\"); // never panics
    }

    #[test]
    fn tokens_are_checked() {
        assert_eq!(token_from_json(br#"{"token":"abc"}"#).unwrap(), "abc");
        assert_eq!(
            token_from_json(br#"{"access_token":"x.y"}"#).unwrap(),
            "x.y"
        );
        for bad in [
            &br#"{"token":""}"#[..],
            br#"{"token":"a\r\nX-Evil: 1"}"#,
            br#"{"token":"a b"}"#,
            br#"{"token":7}"#,
            b"not json",
        ] {
            assert!(
                token_from_json(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn platform_and_descriptor() {
        let d = Sha256Digest::of(b"x").to_string();
        let idx = format!(
            r#"{{"manifests":[{{"mediaType":"m","digest":"{d}","size":3,"platform":{{"os":"linux","architecture":"arm64"}}}}]}}"#
        );
        assert_eq!(pick_platform(idx.as_bytes(), "arm64").unwrap().size, 3);
        assert!(pick_platform(idx.as_bytes(), "amd64").is_err());
        let huge = format!(r#"{{"mediaType":"m","digest":"{d}","size":9223372036854775808}}"#);
        assert!(descriptor(&serde_json::from_str(&huge).unwrap()).is_err());
    }
}
