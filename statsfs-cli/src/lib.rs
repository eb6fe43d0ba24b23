//! # statsfs-cli
//!
//! The `statsfs` command-line tool, as a library (the binary `statsfs` is
//! [`main`]): a kvm_stat-like live view, dumps and schemas of any statsfs tree, bulk
//! stats file or kernel stats file, read in bulk. The user's guide is `docs/CLI.md`.
//!
//! ```text
//! statsfs top /run/statsfs/kvm            live view: total, rate/s, %total
//! statsfs top --once /run/statsfs/kvm     one table, for scripts (--log, --csv)
//! statsfs kvm --once                      the kernel's KVM stats of every VMM (root)
//! statsfs dump --format json PATH         every value (text, json, openmetrics)
//! statsfs schema PATH                     every descriptor
//! ```
//!
//! Data flows one way: the [`Reader`] opens what `PATH` names and refreshes it (one
//! positioned read per bulk file), the model places each stat in its source, the table
//! computes the rows, and the batch modes, the dumps and the terminal view show them.
//!
//! The reader alone is a library with no command line: with `default-features = false`
//! (no feature `tool`) the crate is [`Reader`] and its errors, over bulk files, the
//! kernel's stats files and shared regions, and compiles no clap, ratatui or regex.
//!
//! ```
//! // The library entry point takes the arguments and where to write.
//! let mut out = Vec::new();
//! statsfs_cli::run(["statsfs", "completions", "bash"], &mut out).unwrap();
//! assert!(String::from_utf8(out).unwrap().contains("top"));
//! ```

#![deny(missing_docs)]
#![deny(unsafe_code)]
// Without the tool, parts of the model only the outputs read are unused.
#![cfg_attr(not(feature = "tool"), allow(dead_code))]

// The reader library: no clap, ratatui or regex.
mod catalogue;
mod error;
mod fd;
mod kvm;
mod model;
mod open;
mod printable;
mod reader;

pub use error::{CliError, NoVm};
pub use printable::printable;
pub use reader::Reader;

// The tool (feature `tool`, on by default): the command line, the outputs, the view.
#[cfg(feature = "tool")]
mod args;
#[cfg(feature = "tool")]
mod batch;
#[cfg(feature = "tool")]
mod dump;
#[cfg(feature = "tool")]
mod table;
#[cfg(feature = "tool")]
mod tui;

#[cfg(feature = "tool")]
pub use args::{Cli, Command, DumpArgs, Format, KvmArgs, SchemaArgs, Sort, TopArgs, ViewArgs};
#[cfg(feature = "tool")]
pub use tool::{main, run};

#[cfg(feature = "tool")]
mod tool {
    use std::ffi::OsString;
    use std::io::{self, IsTerminal, Write};
    use std::process::ExitCode;

    use clap::{CommandFactory, Parser};

    use super::args::{Cli, Command, ViewArgs};
    use super::{batch, dump, printable, tui, CliError, Reader};

    /// Runs one command line (`args[0]` is the program name) writing to `out`; the live
    /// view draws on the terminal instead. Notes about VMMs that cannot be read go to
    /// standard error.
    pub fn run<I, T>(args: I, out: &mut dyn Write) -> Result<(), CliError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let cli = Cli::try_parse_from(args)?;
        match cli.command {
            Command::Top(a) => {
                let mut reader = Reader::open(&a.path)?;
                show(out, &mut reader, &a.view)
            }
            Command::Kvm(a) => {
                let mut reader = Reader::kvm(a.pid, &mut io::stderr())?;
                show(out, &mut reader, &a.view)
            }
            Command::Dump(a) => match dump::mount_exposition(&a.path, a.format) {
                // A mount serves the exposition itself: what `/metrics` serves.
                Some(text) => out.write_all(&text).map_err(CliError::Output),
                None => dump::dump(out, &Reader::open(&a.path)?, a.format),
            },
            Command::Schema(a) => dump::schema(out, &Reader::open(&a.path)?),
            Command::Completions { shell } => {
                clap_complete::generate(shell, &mut Cli::command(), "statsfs", out);
                Ok(())
            }
            Command::Man => clap_mangen::Man::new(Cli::command())
                .render(out)
                .map_err(CliError::Output),
        }
    }

    fn show(out: &mut dyn Write, reader: &mut Reader, view: &ViewArgs) -> Result<(), CliError> {
        if view.once {
            batch::once(out, reader, view)
        } else if view.log || view.csv {
            batch::log(out, reader, view, view.csv)
        } else if io::stdout().is_terminal() {
            tui::run(reader, view)
        } else {
            Err(CliError::Terminal(io::Error::other(
                "standard output is not a terminal",
            )))
        }
    }

    /// The binary's `main`: runs the command line of this process, prints an error as one
    /// line on standard error, and exits 0 on success, 2 for a bad command line (clap's
    /// usage message), 1 otherwise. A closed output pipe (`statsfs dump ... | head`) ends
    /// the tool quietly.
    pub fn main() -> ExitCode {
        let stdout = io::stdout();
        let mut out = stdout.lock();
        let result = run(std::env::args_os(), &mut out);
        let _ = out.flush();
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(CliError::Usage(e)) => {
                let _ = e.print();
                ExitCode::from(if e.use_stderr() { 2 } else { 0 })
            }
            Err(CliError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                // One line, whatever foreign text (a path, a name in a blob) it quotes.
                eprintln!("statsfs: {}", printable(&e.to_string()));
                ExitCode::FAILURE
            }
        }
    }
}
