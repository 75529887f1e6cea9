//! `ct`, the Cerro Torre command: parse arguments, run one command, map the outcome to an exit
//! code (DESIGN §7). Each command lives in `cmd/`; this file only wires them.
#![forbid(unsafe_code)]

mod app;
mod cmd;
mod config;
mod exit;
mod output;
mod passphrase;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match app::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => exit::OK,
                _ => exit::USAGE,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let json_default = cli.global.json;
    let out = output::Output::new(json_default, cli.global.color, cli.global.quiet);
    match cmd::run(cli, out.clone()) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            out.failure(&f);
            ExitCode::from(f.code)
        }
    }
}
