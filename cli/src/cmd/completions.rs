//! `ct completions SHELL` (a completion script on stdout) and the hidden `ct __man DIR` (man
//! pages: `ct.1` and one per subcommand, `ct-store-ls.1`, …), both generated from the clap
//! definitions in `app.rs`, so they say exactly what `--help` says. `tools/quickstart` installs
//! both beside the binary.

use crate::app::{Cli, CompletionsArgs, ManArgs};
use crate::exit::{CmdResult, Failure};
use clap::{Command, CommandFactory};
use std::path::Path;

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
/// can type (`ct-store-ls.1`); hidden internal commands get none.
pub fn man(a: ManArgs) -> CmdResult<u8> {
    std::fs::create_dir_all(&a.dir)
        .map_err(|e| Failure::io(format!("creating {}", a.dir.display()), e))?;
    let mut cmd = public();
    cmd.build();
    write_pages(&cmd, &a.dir)
        .map_err(|e| Failure::io(format!("writing man pages into {}", a.dir.display()), e))?;
    Ok(0)
}

/// One page for `cmd` (named by its display name once built: `ct-store-ls`), then its
/// subcommands'.
fn write_pages(cmd: &Command, dir: &Path) -> std::io::Result<()> {
    let name = cmd.get_display_name().unwrap_or_else(|| cmd.get_name());
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    std::fs::write(dir.join(format!("{name}.1")), out)?;
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        write_pages(sub, dir)?;
    }
    Ok(())
}
