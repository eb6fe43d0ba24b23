//! The modes for scripts: `--once` (one table), `--log` (a line per interval, the header
//! repeated as kvm_stat's log mode does) and `--csv`.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use super::args::ViewArgs;
use super::error::CliError;
use super::reader::Reader;
use super::table::{fmt_rate, fmt_share, rate, View};

/// How many value lines `--log` prints between two headers (kvm_stat's number).
const LOG_HEADER_EVERY: u64 = 20;

/// Writes a table of `rows` with a heading.
pub(crate) fn write_table(
    out: &mut dyn Write,
    reader: &Reader,
    view: &View,
    prev: &[u64],
    dt: f64,
) -> std::io::Result<()> {
    let rows = view.rows(&reader.model, &reader.data, prev, dt);
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(24) + 2;
    writeln!(out, "{}", view.title(&reader.model))?;
    writeln!(
        out,
        "{:<width$}{:>16}{:>14}{:>8}",
        if view.children_of.is_some() {
            "source"
        } else {
            "name"
        },
        "total",
        "rate/s",
        "%total"
    )?;
    for r in &rows {
        writeln!(
            out,
            "{:<width$}{:>16}{:>14}{:>8}",
            r.name,
            r.total,
            fmt_rate(r.rate),
            fmt_share(r.share)
        )?;
    }
    Ok(())
}

/// `--once`: reads, waits one interval, reads again, prints the table.
pub(crate) fn once(
    out: &mut dyn Write,
    reader: &mut Reader,
    args: &ViewArgs,
) -> Result<(), CliError> {
    reader.wait(args.interval)?;
    // After a change of layout `data` holds the first read's values, moved.
    let (prev, t0) = (reader.data.clone(), reader.at);
    reader.refresh()?;
    let view = View::new(args, &reader.model, &reader.label)?;
    let dt = reader.at.duration_since(t0).as_secs_f64();
    write_table(out, reader, &view, &prev, dt).map_err(CliError::Output)
}

/// `--log` and `--csv`: a line per interval with every stat's rate per second.
pub(crate) fn log(
    out: &mut dyn Write,
    reader: &mut Reader,
    args: &ViewArgs,
    csv: bool,
) -> Result<(), CliError> {
    let view = View::new(args, &reader.model, &reader.label)?;
    // The columns, by (source path, stat name): they survive a change of layout.
    let columns: Vec<(String, String, String)> = view
        .matching(&reader.model)
        .into_iter()
        .map(|(label, i)| {
            let (path, name) = reader.model.key(i);
            (label, path.to_owned(), name.to_owned())
        })
        .collect();
    let widths: Vec<usize> = columns.iter().map(|c| c.0.len().max(10)).collect();
    let header = |out: &mut dyn Write| -> std::io::Result<()> {
        if csv {
            let names: Vec<String> = columns.iter().map(|c| csv_field(&c.0)).collect();
            writeln!(out, "time,{}", names.join(","))
        } else {
            // The same widths as the value lines, right-aligned over them.
            let names: Vec<String> = columns
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{:>w$}", c.0))
                .collect();
            writeln!(out, "{}", names.join(" "))
        }
    };
    let mut lines = 0u64;
    let write =
        |out: &mut dyn Write, line: &str| out.write_all(line.as_bytes()).and_then(|_| out.flush());
    // Each column's stat in the current layout, found again only when the layout changes.
    let resolve = |reader: &Reader| -> Vec<Option<usize>> {
        let model = &reader.model;
        columns
            .iter()
            .map(|(_, path, name)| model.find(path).and_then(|s| model.stat(s, name)))
            .collect()
    };
    let mut stats = resolve(reader);
    header(out).map_err(CliError::Output)?;
    while args.count.is_none_or(|n| lines < n) {
        if reader.wait(args.interval)? {
            stats = resolve(reader);
        }
        let (prev, t0) = (reader.data.clone(), reader.at);
        reader.refresh()?;
        let dt = reader.at.duration_since(t0).as_secs_f64();
        let model = &reader.model;
        let mut line = String::new();
        if csv {
            let t = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            line.push_str(&format!("{}.{:03}", t.as_secs(), t.subsec_millis()));
        }
        for (k, stat) in stats.iter().enumerate() {
            let rate = fmt_rate(stat.and_then(|i| rate(model, i, &reader.data, &prev, dt)));
            if csv {
                line.push(',');
                line.push_str(&rate);
            } else {
                line.push_str(&format!(
                    "{}{:>w$}",
                    if k > 0 { " " } else { "" },
                    rate,
                    w = widths[k]
                ));
            }
        }
        line.push('\n');
        if !csv && lines > 0 && lines % LOG_HEADER_EVERY == 0 {
            header(out).map_err(CliError::Output)?;
        }
        write(out, &line).map_err(CliError::Output)?;
        lines += 1;
    }
    Ok(())
}

/// A CSV field, quoted when it must be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}
