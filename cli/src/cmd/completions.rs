//! `ct completions SHELL` (a completion script on stdout) and the hidden `ct __man DIR` (man
//! pages: `ct.1` and one per subcommand, `ct-store-ls.1`, …), both generated from the clap
//! definitions in `app.rs`, so they say exactly what `--help` says. `tools/quickstart` installs
//! both beside the binary.

use crate::app::{Cli, CompletionsArgs, ManArgs};
use crate::exit::{CmdResult, Failure, IO_ERROR};
use cerro_store::outdir::create_at;
use clap::{Command, CommandFactory};
use rustix::fs::{fstat, openat, renameat, Mode, OFlags, CWD};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;

/// `ct` as people type it: the definitions without the hidden internal commands (which the
/// completion generators would otherwise offer).
fn public() -> Command {
    let full = Cli::command();
    let mut cmd = Command::new("ct")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true);
    if let Some(s) = full.get_about() {
        cmd = cmd.about(s.clone());
    }
    if let Some(s) = full.get_long_about() {
        cmd = cmd.long_about(s.clone());
    }
    if let Some(s) = full.get_after_help() {
        cmd = cmd.after_help(s.clone());
    }
    for arg in full.get_arguments() {
        cmd = cmd.arg(arg.clone());
    }
    for sub in full.get_subcommands().filter(|s| !s.is_hide_set()) {
        cmd = cmd.subcommand(sub.clone());
    }
    cmd
}

/// Print the completion script for one shell.
pub fn completions(a: CompletionsArgs) -> CmdResult<u8> {
    let mut cmd = public();
    clap_complete::generate(a.shell, &mut cmd, "ct", &mut std::io::stdout());
    Ok(0)
}

/// Write every man page into `DIR` (made if absent): `ct.1`, then one per subcommand a user
/// can type (`ct-store-ls.1`); hidden internal commands get none. Run as root by the quick
/// start, so DIR must be a real directory owned by the caller and writable by nobody else, and
/// each page is written through its descriptor: created exclusively under a temporary name,
/// then renamed into place, so a link planted in DIR is replaced, never followed.
pub fn man(a: ManArgs) -> CmdResult<u8> {
    let shown = a.dir.display();
    std::fs::create_dir_all(&a.dir).map_err(|e| Failure::io(format!("creating {shown}"), e))?;
    let dir = openat(
        CWD,
        &a.dir,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| Failure::io(format!("opening {shown}"), e.into()))?;
    let st = fstat(&dir).map_err(|e| Failure::io(format!("checking {shown}"), e.into()))?;
    if st.st_uid != nix::unistd::geteuid().as_raw() || st.st_mode & 0o022 != 0 {
        return Err(Failure::new(
            IO_ERROR,
            format!("{shown} is not a directory only you can write to"),
        )
        .hint("write the man pages into a directory you own (mode 0755 or stricter)"));
    }
    let mut cmd = public();
    cmd.build();
    write_pages(&cmd, &dir)
        .map_err(|e| Failure::io(format!("writing man pages into {shown}"), e))?;
    Ok(0)
}

/// One page for `cmd` (named by its display name once built: `ct-store-ls`), then its
/// subcommands'.
fn write_pages(cmd: &Command, dir: &OwnedFd) -> std::io::Result<()> {
    let name = format!(
        "{}.1",
        cmd.get_display_name().unwrap_or_else(|| cmd.get_name())
    );
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    let tmp = format!(".{name}.{}", std::process::id());
    let mut f = create_at(dir, &tmp)?;
    f.write_all(&page)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    renameat(dir, tmp.as_str(), dir, name.as_str())?;
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        write_pages(sub, dir)?;
    }
    Ok(())
}
