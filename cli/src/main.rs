//! `ct`, the Cerro Torre command: parse arguments, run one command, map the outcome to an exit
//! code (spec/exit-codes.md). Each command lives in `cmd/`; this file only wires them.

mod app;
mod cmd;
mod config;
mod ctx;
mod exit;
mod output;
mod passphrase;
mod registry;
mod steps;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Before anything else (and before any thread): children must never inherit it.
    passphrase::take_from_env();
    let cli = match app::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => exit::OK,
                _ => exit::USAGE,
            };
            // `--json` promises a JSON document for every outcome, argument errors included.
            let json = std::env::args_os()
                .skip(1)
                .take_while(|a| a != "--")
                .any(|a| a == "--json");
            if code == exit::USAGE && json {
                let text = e.to_string();
                let first = text.lines().next().unwrap_or_default();
                output::Output::new(true, output::ColorChoice::Never, false).json_doc(
                    &serde_json::json!({"ok": false, "exit_code": code, "error": {
                        "message": first.trim_start_matches("error: "), "hint": "see `ct --help`"}}),
                );
            }
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
