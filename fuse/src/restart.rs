//! A FUSE connection that outlives the process serving it. A supervisor mounts and keeps the
//! `/dev/fuse` descriptor ([`Connection`]); serving processes come and go on it. The kernel's
//! INIT request is read once and kept: each serving process does its handshake against that
//! copy over a socket ([`serve_connection`]), then serves the real connection, and asks the
//! kernel to send again whatever its predecessor had read but not answered
//! (`FUSE_NOTIFY_RESEND`, Linux ≥ 6.9). While no process serves, requests wait in the kernel.
//!
//! Inode numbers must mean the same to every serving process: see
//! [`crate::LoadRecord`] and `Table::replay`.

use crate::{mount_options_text, MountOptions};
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// `FUSE_INIT`'s opcode.
const FUSE_INIT: u32 = 26;
/// Size of `struct fuse_in_header`.
const IN_HEADER: usize = 40;
/// Size of `struct fuse_out_header`.
const OUT_HEADER: usize = 16;
/// `FUSE_HAS_RESEND`, bit 39 of the INIT flags (bit 7 of `flags2`).
const HAS_RESEND_FLAGS2_BIT: u32 = 1 << 7;
/// `FUSE_NOTIFY_RESEND`.
const NOTIFY_RESEND: i32 = 7;
/// Largest INIT request or reply accepted (both are well under 200 bytes).
pub const MAX_INIT: usize = 4096;
/// Buffer the INIT request is read into: the kernel refuses a read of `/dev/fuse` into less
/// than it may need for its largest request (8 KiB plus the largest write), whatever comes.
const READ_BUFFER: usize = 1 << 20;

/// A mounted FUSE connection whose INIT request was read and not yet answered.
pub struct Connection {
    fd: OwnedFd,
    init: Vec<u8>,
    mountpoint: PathBuf,
}

/// Mount at `mountpoint` (root: mount(2); others: `fusermount3`) and read the kernel's INIT
/// request, leaving it unanswered: nothing reaches the mount until a serving process's reply
/// is passed to [`Connection::answer_init`].
pub fn connect(mountpoint: &Path, opts: &MountOptions) -> io::Result<Connection> {
    let fd = if nix::unistd::geteuid().is_root() {
        mount_as_root(mountpoint, opts)?
    } else {
        crate::fusermount::mount(mountpoint, &mount_options_text(opts).join(","))?
    };
    let mut buf = vec![0u8; READ_BUFFER];
    let n = loop {
        match rustix::io::read(&fd, &mut buf) {
            Err(rustix::io::Errno::INTR) => continue,
            r => break r?,
        }
    };
    buf.truncate(n);
    if n < IN_HEADER + 8 || opcode(&buf) != FUSE_INIT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the kernel's first FUSE request is not INIT",
        ));
    }
    Ok(Connection {
        fd,
        init: buf,
        mountpoint: mountpoint.to_path_buf(),
    })
}

fn opcode(msg: &[u8]) -> u32 {
    u32::from_le_bytes(msg[4..8].try_into().expect("4 bytes"))
}

fn mount_as_root(mountpoint: &Path, opts: &MountOptions) -> io::Result<OwnedFd> {
    use nix::mount::MsFlags;
    use rustix::fs::{open, Mode, OFlags};
    let fd = open("/dev/fuse", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())?;
    let mut data = format!(
        "fd={},rootmode=40000,user_id={},group_id={},default_permissions",
        fd.as_raw_fd(),
        nix::unistd::getuid(),
        nix::unistd::getgid()
    );
    if opts.allow_other {
        data.push_str(",allow_other");
    }
    let mut flags = MsFlags::MS_RDONLY | MsFlags::MS_NODEV | MsFlags::MS_NOATIME;
    if !opts.suid {
        flags |= MsFlags::MS_NOSUID;
    }
    nix::mount::mount(
        Some(opts.fsname.as_str()),
        mountpoint,
        Some("fuse"),
        flags,
        Some(data.as_str()),
    )
    .map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("mount({}): {e}", mountpoint.display()),
        )
    })?;
    Ok(fd)
}

impl Connection {
    /// The `/dev/fuse` descriptor (serving processes inherit it).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The kernel's INIT request, as read.
    pub fn init_request(&self) -> &[u8] {
        &self.init
    }

    /// Whether this kernel re-sends requests a dead serving process had read
    /// (`FUSE_HAS_RESEND` in its INIT). Without it, those requests would never be answered, so
    /// a serving process must not be replaced: its death has to end the connection.
    pub fn kernel_resends(&self) -> bool {
        // struct fuse_init_in: major, minor, max_readahead, flags, flags2 (ABI 7.36+).
        let at = IN_HEADER + 16;
        self.init
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
            .is_some_and(|flags2| flags2 & HAS_RESEND_FLAGS2_BIT != 0)
    }

    /// Complete the kernel's handshake with `reply`, the first serving process's answer to the
    /// INIT request. Checked to be an answer to it (same unique, no error).
    pub fn answer_init(&self, reply: &[u8]) -> io::Result<()> {
        check_init_reply(&self.init, reply)?;
        let n = rustix::io::write(&self.fd, reply)?;
        if n != reply.len() {
            return Err(io::Error::other("a short write of the INIT reply"));
        }
        Ok(())
    }

    /// Give up the descriptor (the connection ends once no process holds it).
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

/// Check that `reply` answers the INIT request `init` successfully.
pub fn check_init_reply(init: &[u8], reply: &[u8]) -> io::Result<()> {
    let bad =
        |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("INIT reply: {what}"));
    if reply.len() < OUT_HEADER || reply.len() > MAX_INIT {
        return Err(bad("wrong size"));
    }
    let len = u32::from_le_bytes(reply[0..4].try_into().expect("4 bytes")) as usize;
    let error = i32::from_le_bytes(reply[4..8].try_into().expect("4 bytes"));
    if len != reply.len() {
        return Err(bad("length field differs from its size"));
    }
    if error != 0 {
        return Err(bad(&format!(
            "the serving process refused it (errno {})",
            -error
        )));
    }
    if reply[8..16] != init[8..16] {
        return Err(bad("it answers another request"));
    }
    Ok(())
}

/// In a serving process: do the FUSE handshake over `handshake` (a `SOCK_SEQPACKET` socket
/// whose other end sends the saved INIT request and reads the reply), then serve `fuse`, the
/// connection's descriptor, until the mount ends. With `resend`, first ask the kernel to send
/// again every request read but not answered by a process that served before. `ready` is
/// called once the connection is this process's, just before requests are read.
pub fn serve_connection<S: cerro_core::rootfs::TreeStore + ?Sized + 'static>(
    fs: crate::VerifiedFs<S>,
    fuse: OwnedFd,
    handshake: OwnedFd,
    opts: &MountOptions,
    resend: bool,
    ready: impl FnOnce(),
) -> io::Result<()> {
    let slot = handshake.as_raw_fd();
    // One descriptor for every thread: requests read through a cloned descriptor are dropped
    // by the kernel (ECONNABORTED) when it closes, i.e. when this process dies; requests read
    // through the shared one stay with the connection, which the supervisor keeps, and are
    // sent again to the next process.
    let config = crate::session_config(opts, false);
    let notifier = fs.read_ahead_notifier();
    let session = fuser::Session::from_fd(fs, handshake, config.acl, config)?;
    // The notifier writes through the session's descriptor number, which names the connection
    // once `take_over` is done (and nothing is read ahead before requests are served).
    let _ = notifier.set(session.notifier());
    take_over(slot, &fuse)?;
    if resend {
        notify_resend(fuse.as_fd())?;
    }
    drop(fuse);
    ready();
    session.run()
}

/// Make the descriptor number `slot`, which fuser's session owns and reads and writes by number,
/// name the connection `fuse` instead of the handshake socket: dup3 replaces it atomically, and
/// the session goes on owning (and will close) it. No safe API can do this, since the number is
/// owned by the session, and fuser 0.18 has no way to start a session without a handshake.
#[allow(unsafe_code)]
fn take_over(slot: std::os::fd::RawFd, fuse: &OwnedFd) -> io::Result<()> {
    // SAFETY: `slot` is open and owned by a session that lives on; the OwnedFd made here is
    // never dropped (ManuallyDrop), so it neither closes the number nor outlives the session's
    // ownership. dup3 only changes what the number refers to.
    let mut target = ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(slot) });
    rustix::io::dup3(fuse, &mut target, rustix::io::DupFlags::CLOEXEC)?;
    Ok(())
}

/// Ask the kernel to send again every request of the connection that was read and not
/// answered (`FUSE_NOTIFY_RESEND`).
pub fn notify_resend(fuse: BorrowedFd<'_>) -> io::Result<()> {
    let mut msg = [0u8; OUT_HEADER];
    msg[0..4].copy_from_slice(&(OUT_HEADER as u32).to_le_bytes());
    msg[4..8].copy_from_slice(&NOTIFY_RESEND.to_le_bytes());
    let n = rustix::io::write(fuse, &msg)?;
    if n != msg.len() {
        return Err(io::Error::other("a short write of FUSE_NOTIFY_RESEND"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init_request(flags2: u32) -> Vec<u8> {
        let mut m = vec![0u8; IN_HEADER + 64];
        let len = m.len() as u32;
        m[0..4].copy_from_slice(&len.to_le_bytes());
        m[4..8].copy_from_slice(&FUSE_INIT.to_le_bytes());
        m[8..16].copy_from_slice(&42u64.to_le_bytes());
        m[IN_HEADER + 16..IN_HEADER + 20].copy_from_slice(&flags2.to_le_bytes());
        m
    }

    #[test]
    fn resend_support_is_read_from_the_init_flags() {
        let c = |flags2| Connection {
            fd: rustix::fs::open(
                "/dev/null",
                rustix::fs::OFlags::RDONLY,
                rustix::fs::Mode::empty(),
            )
            .unwrap(),
            init: init_request(flags2),
            mountpoint: PathBuf::new(),
        };
        assert!(c(1 << 7).kernel_resends());
        assert!(c(0xffff_ffff).kernel_resends());
        assert!(!c(1 << 6).kernel_resends());
    }

    #[test]
    fn an_init_reply_must_answer_that_request_without_error() {
        let init = init_request(0);
        let mut reply = vec![0u8; 80];
        reply[0..4].copy_from_slice(&80u32.to_le_bytes());
        reply[8..16].copy_from_slice(&42u64.to_le_bytes());
        check_init_reply(&init, &reply).unwrap();
        let mut other = reply.clone();
        other[8] = 43;
        assert!(check_init_reply(&init, &other).is_err());
        let mut failed = reply.clone();
        failed[4..8].copy_from_slice(&(-5i32).to_le_bytes());
        assert!(check_init_reply(&init, &failed).is_err());
        assert!(check_init_reply(&init, &reply[..70]).is_err());
    }
}
