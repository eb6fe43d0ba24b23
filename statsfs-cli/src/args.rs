//! The command line (clap): every subcommand, option and its help, from which the shell
//! completions and the man page are generated too.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum, ValueHint};

/// Read statsfs trees, bulk stats files and KVM's binary stats files: a live view with
/// totals and rates, dumps and schemas.
///
/// PATH is a statsfs mount, one of its source directories, a bulk stats file (.stats,
/// .tree.stats, a saved blob) or fd:N, a stats file descriptor the tool inherited. Every
/// refresh after the first is one positioned read per bulk file.
#[derive(Debug, Parser)]
#[command(name = "statsfs", version, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// A live view of every stat of a source: total, rate per second, share of the total.
    ///
    /// Keys: arrows select, Enter shows the selected stat per child source, d drills down
    /// into a child source, u (or Backspace) goes back up, o sorts by total or by rate,
    /// f filters by regex, c clears the filter, z skips zeros, r resets the baseline,
    /// + and - change the interval, h shows help, q quits.
    Top(TopArgs),
    /// KVM's statistics of running VMMs, read from the binary stats files they hold open
    /// (found in /proc/PID/fd, duplicated with pidfd_getfd: run as root); shown as `top`
    /// shows a tree.
    Kvm(KvmArgs),
    /// Every value of every source, once.
    Dump(DumpArgs),
    /// Every descriptor: name, kind, unit, scale, aggregation, mode, size, description.
    Schema(SchemaArgs),
    /// A shell completion script, on standard output.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// The man page (roff), on standard output.
    Man,
}

/// `statsfs top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// A statsfs mount, a source directory, a bulk stats file or fd:N.
    #[arg(value_name = "PATH", value_hint = ValueHint::AnyPath)]
    pub path: String,
    /// How to show it.
    #[command(flatten)]
    pub view: ViewArgs,
}

/// `statsfs kvm`.
#[derive(Debug, Args)]
pub struct KvmArgs {
    /// Only this process (default: every process that holds KVM stats files).
    #[arg(short, long, value_name = "PID")]
    pub pid: Option<u32>,
    /// How to show it.
    #[command(flatten)]
    pub view: ViewArgs,
}

/// What `top` and `kvm` show and how.
#[derive(Debug, Args, Clone)]
pub struct ViewArgs {
    /// Seconds between refreshes (the batch modes' too).
    #[arg(short = 'd', long, value_name = "SECONDS", default_value = "1", value_parser = parse_interval)]
    pub interval: Duration,
    /// Sort by the total or by the rate, largest first.
    #[arg(long, value_enum, default_value_t = Sort::Total)]
    pub sort: Sort,
    /// Show only the stats whose name matches this regular expression.
    #[arg(short, long, value_name = "REGEX")]
    pub filter: Option<String>,
    /// Start in this source (a path from the top, such as kvm/1234-5).
    #[arg(short, long, value_name = "SOURCE")]
    pub source: Option<String>,
    /// Show this stat's value in each child source instead of the source's stats.
    #[arg(long, value_name = "STAT")]
    pub children: Option<String>,
    /// Leave out stats whose total and rate are both 0.
    #[arg(short = 'z', long)]
    pub skip_zeros: bool,
    /// Print one table (two reads, an interval apart, for the rates) and exit.
    #[arg(short = '1', long, group = "batch")]
    pub once: bool,
    /// Print a line per interval: the rate of every stat, one column each, the header
    /// repeated every 20 lines.
    #[arg(short, long, group = "batch")]
    pub log: bool,
    /// As --log, comma-separated, with a time column and the header once.
    #[arg(short, long, group = "batch")]
    pub csv: bool,
    /// With --log or --csv: stop after this many lines of values.
    #[arg(short = 'n', long, value_name = "N")]
    pub count: Option<u64>,
}

/// The sort order of `top`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Sort {
    /// Largest total first.
    Total,
    /// Largest rate first.
    Rate,
}

/// `statsfs dump`.
#[derive(Debug, Args)]
pub struct DumpArgs {
    /// A statsfs mount, a source directory, a bulk stats file or fd:N.
    #[arg(value_name = "PATH", value_hint = ValueHint::AnyPath)]
    pub path: String,
    /// The output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// The formats of `dump`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `<source>/<stat> <value>` per line; a histogram's buckets follow its count.
    Text,
    /// One JSON document: every source with its stats.
    Json,
    /// OpenMetrics 1.0 text, as a Prometheus server scrapes it.
    Openmetrics,
    /// The Prometheus text format 0.0.4 (what `promtool check metrics` reads).
    Prometheus,
}

/// `statsfs schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// A statsfs mount, a source directory, a bulk stats file or fd:N.
    #[arg(value_name = "PATH", value_hint = ValueHint::AnyPath)]
    pub path: String,
}

/// The shortest and longest intervals: a refresh loop that spins, or one that never
/// refreshes, is refused.
const INTERVALS: (f64, f64) = (0.01, 3600.0);

fn parse_interval(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(INTERVALS.0..=INTERVALS.1).contains(&secs) {
        return Err(format!(
            "{secs} s is out of range: give {} to {} seconds",
            INTERVALS.0, INTERVALS.1
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}
