//! A container's Linux capabilities: the kernel's names, the set podman gives a root container,
//! and the set a run gets from `--privileged`, `--cap-add` and `--cap-drop`. Pure: the caller
//! reads which capabilities the kernel knows and which this process holds.

/// Why a capability option was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapError {
    /// A name that is no capability (the option's value as given).
    #[error("unknown capability {0:?}")]
    Unknown(String),
    /// One the caller does not hold itself, so no container it starts can.
    #[error("{0} is not in this process's bounding set, so no container it starts can hold it")]
    NotHeld(&'static str),
}

/// Linux capabilities by number (capability.h); the kernel's `cap_last_cap` says how many of
/// them it knows.
pub const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// What podman gives a root container (containers-common's `default_capabilities`, as podman
/// 4.3 on Debian 12 writes into its runtime spec: measured with `podman run --rootfs`).
pub const DEFAULT_CAPABILITIES: [&str; 11] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// The capability named by a `--cap-add`/`--cap-drop` value (`net_admin`, `CAP_NET_ADMIN`), or
/// None for `ALL`.
fn capability(arg: &str, known: &[&'static str]) -> Result<Option<&'static str>, CapError> {
    let upper = arg.to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(None);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    known
        .iter()
        .find(|c| **c == full)
        .map(|c| Some(*c))
        .ok_or_else(|| CapError::Unknown(arg.to_string()))
}

/// The container's capability set: podman's defaults (every capability ct itself holds with
/// `--privileged`), then `--cap-add ALL`, `--cap-drop ALL`, each added one, each dropped one
/// (so a capability both added and dropped is dropped), in capability order. Names are checked
/// against `known` (the kernel's); `have` is what this process may grant (its bounding set: a
/// runtime cannot give a container more than it has), so ALL means all of those, and asking
/// for one outside it is refused.
pub fn capabilities(
    privileged: bool,
    add: &[String],
    drop: &[String],
    known: &[&'static str],
    have: &[&'static str],
) -> Result<Vec<String>, CapError> {
    let add = add
        .iter()
        .map(|a| capability(a, known))
        .collect::<Result<Vec<_>, _>>()?;
    let drop = drop
        .iter()
        .map(|a| capability(a, known))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(c) = add.iter().flatten().find(|c| !have.contains(c)) {
        return Err(CapError::NotHeld(c));
    }
    let mut set: Vec<&str> = if privileged {
        have.to_vec()
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .copied()
            .filter(|c| have.contains(c))
            .collect()
    };
    if add.contains(&None) {
        set = have.to_vec();
    }
    if drop.contains(&None) {
        set.clear();
    }
    set.extend(add.iter().flatten());
    set.retain(|c| !drop.contains(&Some(*c)));
    Ok(known
        .iter()
        .filter(|c| set.contains(c))
        .map(|c| c.to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_sets() {
        let known = &CAPABILITIES[..];
        let capabilities =
            |p: bool, a: &[String], d: &[String], k: &[&'static str]| capabilities(p, a, d, k, k);
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let d = capabilities(false, &[], &[], known).unwrap();
        assert_eq!(d.len(), 11);
        assert!(d.contains(&"CAP_CHOWN".to_string()));
        let c = capabilities(false, &s(&["net_admin"]), &s(&["CAP_CHOWN"]), known).unwrap();
        assert!(c.contains(&"CAP_NET_ADMIN".to_string()) && !c.contains(&"CAP_CHOWN".into()));
        assert_eq!(
            capabilities(false, &s(&["NET_BIND_SERVICE"]), &s(&["ALL"]), known).unwrap(),
            ["CAP_NET_BIND_SERVICE"]
        );
        assert_eq!(
            capabilities(false, &s(&["ALL"]), &s(&["MKNOD"]), known)
                .unwrap()
                .len(),
            40
        );
        assert_eq!(capabilities(true, &[], &[], known).unwrap().len(), 41);
        assert_eq!(
            capabilities(false, &s(&["X"]), &[], known).unwrap_err(),
            CapError::Unknown("X".into())
        );
        // What ct does not hold itself: not in ALL, refused by name.
        let have: Vec<_> = known
            .iter()
            .copied()
            .filter(|c| *c != "CAP_SYS_RESOURCE")
            .collect();
        assert_eq!(
            super::capabilities(true, &[], &[], known, &have)
                .unwrap()
                .len(),
            40
        );
        assert_eq!(
            super::capabilities(false, &s(&["SYS_RESOURCE"]), &[], known, &have).unwrap_err(),
            CapError::NotHeld("CAP_SYS_RESOURCE")
        );
        // Both added and dropped: dropped.
        assert!(
            !capabilities(false, &s(&["SYS_ADMIN"]), &s(&["SYS_ADMIN"]), known)
                .unwrap()
                .contains(&"CAP_SYS_ADMIN".to_string())
        );
    }
}
