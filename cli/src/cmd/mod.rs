//! One module per subcommand; `run` loads the configuration and dispatches. A command parses
//! nothing itself and calls no other command: what several need is in `crate::steps`.

mod completions;
mod daemon;
mod diff;
mod doctor;
mod explain;
mod export;
mod fetch;
mod import;
mod index;
mod key;
mod mount;
mod pack;
mod policy;
mod push;
mod resign;
pub mod run;
mod store;
mod unpack;
mod verify;

pub use crate::ctx::Ctx;

use crate::app::{Cli, Cmd, StoreCmd};
use crate::config::{self, Config};
use crate::exit::CmdResult;
use crate::output::Output;

/// Run the parsed command; returns the exit code for outcomes that are not errors (verification
/// verdicts print their own report and return their code).
pub fn run(cli: Cli, mut out: Output) -> CmdResult<u8> {
    let dir = cli
        .global
        .config_dir
        .clone()
        .unwrap_or_else(config::default_dir);
    let cfg = Config::load(dir)?;
    if cfg.file.output.as_deref() == Some("json") && !out.json {
        out.json = true;
        out.progress = false;
    }
    let store = cerro_store::resolve_location(
        cli.global.store.as_deref(),
        None,
        nix::unistd::geteuid().is_root(),
        std::env::var("XDG_DATA_HOME").ok().as_deref(),
        std::env::var("HOME").ok().as_deref(),
    );
    let ctx = Ctx { cfg, out, store };
    match cli.cmd {
        Cmd::Keygen(a) => key::keygen(&ctx, a).map(|_| 0),
        Cmd::Key(k) => key::run(&ctx, k).map(|_| 0),
        Cmd::Pack(a) => pack::run(&ctx, a).map(|_| 0),
        Cmd::Verify(a) => verify::run(&ctx, a),
        Cmd::Explain(a) => explain::run(&ctx, a),
        Cmd::Diff(a) => diff::run(&ctx, a),
        Cmd::Index(a) => index::index(&ctx, a),
        Cmd::Search(a) => index::search(&ctx, a),
        Cmd::Policy(p) => policy::run(&ctx, p).map(|_| 0),
        Cmd::ReSign(a) => resign::run(&ctx, a).map(|_| 0),
        Cmd::Store(StoreCmd::Mount(a)) => mount::store_mount(&ctx, a),
        Cmd::Store(c) => store::run(&ctx, c),
        Cmd::Push(a) => push::run(&ctx, a).map(|_| 0),
        Cmd::Fetch(a) if a.create => pack::run(&ctx, a.into_pack()).map(|_| 0),
        Cmd::Fetch(a) => fetch::run(&ctx, a),
        Cmd::Export(a) => export::run(&ctx, a),
        Cmd::Import(a) => import::run(&ctx, a),
        Cmd::Mount(a) => mount::mount(&ctx, a),
        Cmd::Umount(a) => mount::umount(&ctx, a),
        Cmd::Mounts => mount::list(&ctx),
        Cmd::Doctor { quick } => doctor::run(&ctx, quick),
        Cmd::Run(a) => run::run(&ctx, a),
        Cmd::Stop(a) => run::detach::stop(&ctx, a),
        Cmd::Unpack(a) => unpack::run(&ctx, a),
        Cmd::MountDaemon(a) => daemon::daemon_main(&ctx, a),
        Cmd::Completions(a) => completions::completions(a),
        Cmd::Man(a) => completions::man(a),
    }
}
