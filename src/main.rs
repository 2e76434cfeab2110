//! The `shadowdiff` command line. Parsing and dispatch live in `cli`; this file only runs it and
//! turns errors into the documented exit codes.
#![forbid(unsafe_code)]

mod cli;
mod exit;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code.into(),
        Err(err) => {
            if exit::is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("shadowdiff: {err:#}");
            exit::Exit::Error.into()
        }
    }
}
