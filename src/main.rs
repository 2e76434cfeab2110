//! The `shadowdiff` command line. Parsing and dispatch live in `cli`; this file only runs it and
//! turns errors into the documented exit codes.
#![forbid(unsafe_code)]

mod cli;
mod exit;

use std::process::ExitCode;

/// glibc's allocator spends a quarter of replay's and analyze's time in malloc/free across
/// threads (measured with perf on `bench/replay.sh`); mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
