//! `statsfs dump` (every value once, as text, JSON or OpenMetrics) and `statsfs schema`
//! (every descriptor).

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;

use rustix::fs::{FileType, Mode, OFlags};
use serde_json::{json, Value as Json};

use super::args::Format;
use super::error::CliError;
use super::model::Model;
use super::printable::printable;
use super::reader::{at_or_below, Reader};
use statsfs_binary::descriptor_of;
use statsfs_binary::StatDesc;
use statsfs_core::{BlockSource, Schema, Source, ValueGroup, ValueType};
use statsfs_region::{EntryKind, RegionReader};
use statsfs_text::openmetrics::{self, Encoder};

/// In a statsfs mount (at its root, the directory with `.schema`, or in one of its source
/// directories), the exposition the mount serves itself (`.metrics`, `.openmetrics` at
/// its root: the encoder HTTP `/metrics` uses, over the same roots, so the same bytes,
/// with the schemas' names, descriptions and labels, which bulk files do not carry), of
/// the sources at or below `path`; `None` anywhere else, or for another format.
///
/// Only a regular file of a FUSE file system is read (opened without blocking, checked,
/// then read): a FIFO or a device planted under that name is not waited on, and a
/// `.schema` and `.metrics` left in an ordinary directory above `path` are not taken for a
/// mount's.
pub(crate) fn mount_exposition(path: &str, format: Format) -> Option<Vec<u8>> {
    use std::io::Read as _;
    let name = match format {
        Format::Prometheus => ".metrics",
        Format::Openmetrics => ".openmetrics",
        Format::Text | Format::Json => return None,
    };
    let dir = std::fs::canonicalize(path).ok()?;
    if !dir.is_dir() {
        return None;
    }
    let root = dir.ancestors().find(|d| d.join(".schema").is_file())?;
    let under = dir.strip_prefix(root).ok()?.to_str()?;
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = rustix::fs::open(root.join(name), flags, Mode::empty()).ok()?;
    if !FileType::from_raw_mode(rustix::fs::fstat(&fd).ok()?.st_mode).is_file()
        || rustix::fs::fstatfs(&fd).ok()?.f_type as i64 != FUSE_SUPER_MAGIC
    {
        return None;
    }
    let mut text = Vec::new();
    std::fs::File::from(fd).read_to_end(&mut text).ok()?;
    // A file of a FUSE file system, not necessarily of statsfs: no control character of
    // it reaches the terminal (statsfs's own exposition has none).
    let control = |c: char| c.is_control() && c != '\n';
    if std::str::from_utf8(&text).map_or(true, |t| t.contains(control)) {
        let lines: Vec<String> = String::from_utf8_lossy(&text)
            .split('\n')
            .map(|l| printable(l).into_owned())
            .collect();
        text = lines.join("\n").into_bytes();
    }
    Some(if under.is_empty() {
        text
    } else {
        openmetrics::subtree(&text, under)
    })
}

/// `statfs`'s file-system type of every FUSE file system (`linux/magic.h`).
const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;

/// `statsfs dump`.
pub(crate) fn dump(out: &mut dyn Write, reader: &Reader, format: Format) -> Result<(), CliError> {
    let (model, data) = (&reader.model, &reader.data);
    let text = match format {
        Format::Text => {
            let mut s = String::new();
            for (i, st) in model.stats.iter().enumerate() {
                let (path, name) = model.key(i);
                let sep = if path.is_empty() { "" } else { "/" };
                s.push_str(&format!("{path}{sep}{name} {}\n", model.number(i, data)));
                if st.desc.kind.is_histogram() {
                    let buckets: Vec<String> =
                        data[st.words.clone()].iter().map(u64::to_string).collect();
                    s.push_str(&format!(
                        "{path}{sep}{name}.buckets {}\n",
                        buckets.join(" ")
                    ));
                }
            }
            s
        }
        Format::Json => {
            let sources: Vec<Json> = model
                .sources
                .iter()
                .filter(|s| !s.stats.is_empty())
                .map(|s| {
                    let stats: Vec<Json> = s
                        .stats
                        .iter()
                        .map(|&i| {
                            let st = &model.stats[i];
                            let mut v = describe(&st.desc);
                            v["name"] = json!(st.name);
                            let n = model.number(i, data);
                            v["value"] = match i64::try_from(n) {
                                Ok(n) => json!(n),
                                Err(_) => json!(n as u64),
                            };
                            if st.desc.kind.is_histogram() {
                                v["buckets"] = json!(&data[st.words.clone()]);
                            }
                            if st.folded {
                                v["folded"] = json!(true);
                            }
                            v
                        })
                        .collect();
                    json!({ "path": s.path, "stats": stats })
                })
                .collect();
            let doc = json!({ "from": reader.label, "sources": sources });
            let mut s =
                serde_json::to_string_pretty(&doc).map_err(|e| CliError::Output(e.into()))?;
            s.push('\n');
            s
        }
        Format::Openmetrics | Format::Prometheus => {
            let roots = match reader.region() {
                Some((region, under)) => region_tree(region, data, under),
                None => tree_of(model, data),
            };
            let f = if format == Format::Prometheus {
                openmetrics::Format::Prometheus
            } else {
                openmetrics::Format::OpenMetrics
            };
            let bytes = Encoder::new().encode(&roots, f).to_vec();
            return out.write_all(&bytes).map_err(CliError::Output);
        }
    };
    out.write_all(text.as_bytes()).map_err(CliError::Output)
}

/// A descriptor's layout as JSON.
fn describe(d: &StatDesc) -> Json {
    json!({
        "kind": d.kind.as_str(),
        "unit": d.unit.as_str(),
        "scale": scale(d),
        "size": d.size,
    })
}

fn scale(d: &StatDesc) -> String {
    format!("{}^{}", d.scale.base.radix(), d.scale.exponent)
}

/// The values as a statsfs tree of their own, for the OpenMetrics encoder: each source
/// a directory whose one group holds its leaf values as read. Aggregates are left out,
/// as the exposition's "leaves only" rule asks: a stat that a descendant also holds
/// under the same name is taken for an aggregate of it (in a statsfs tree it is one),
/// and the tool's own folds are left out too. The metric names use the top-level
/// source's name as the schema name (`kvm_exits_total`).
fn tree_of(model: &Model, data: &[u64]) -> Vec<Source> {
    // The stat names each source's subtree holds below it.
    let mut below: Vec<HashSet<&str>> = vec![HashSet::new(); model.sources.len()];
    for s in (0..model.sources.len()).rev() {
        if let Some(p) = model.sources[s].parent {
            let names: Vec<&str> = model.sources[s]
                .stats
                .iter()
                .map(|&i| model.stats[i].name.as_str())
                .chain(below[s].iter().copied())
                .collect();
            below[p].extend(names);
        }
    }
    let mut nodes: Vec<Option<Source>> = vec![None; model.sources.len()];
    let mut roots = Vec::new();
    for (s, info) in model.sources.iter().enumerate().skip(1) {
        // A source whose parent could not be made is left out with it.
        if info.parent.is_some_and(|p| p != 0 && nodes[p].is_none()) {
            continue;
        }
        let node = match Source::new(info.name()) {
            Ok(node) => node,
            Err(e) => {
                eprintln!(
                    "statsfs: {} and below left out of the exposition: {e}",
                    info.path
                );
                continue;
            }
        };
        let top = info.path.split('/').next().unwrap_or("statsfs");
        let mut descs = Vec::new();
        let mut words = Vec::new();
        for &i in &info.stats {
            let st = &model.stats[i];
            if st.folded || below[s].contains(st.name.as_str()) {
                continue;
            }
            let mut d = st.desc.clone();
            d.name = st.name.clone();
            d.offset = (words.len() * 8) as u32;
            let mut number = descriptor_of(&d);
            number.ty = st.number.ty;
            descs.push(number);
            words.extend_from_slice(&data[st.words.clone()]);
        }
        if !descs.is_empty() {
            match Schema::new_runtime(top, descs) {
                Ok(schema) => {
                    let _ = node.add(ValueGroup::block(schema, Arc::new(Words(words))));
                }
                // Two stats of one name in one source (a blob may say so).
                Err(e) => eprintln!(
                    "statsfs: the values of {} left out of the exposition: {e}",
                    info.path
                ),
            }
        }
        match info.parent.and_then(|p| nodes[p].as_ref()) {
            Some(parent) => {
                let _ = parent.add_subordinate(&node);
            }
            None => roots.push(node.clone()),
        }
        nodes[s] = Some(node);
    }
    roots
}

/// The values of a shared region as a statsfs tree of their own, for the OpenMetrics
/// encoder: one source a path, one group an entry of values, with the entry's schema
/// name and labels (`docs/REGION.md`), so the names and labels are those of the writer's
/// `/metrics`. The aggregate entries are left out (leaves only); hidden values are kept,
/// as the endpoint keeps them. Only the sources at or below `under`, if given.
fn region_tree(region: &RegionReader, data: &[u64], under: Option<&str>) -> Vec<Source> {
    let mut nodes: HashMap<&str, Source> = HashMap::new();
    let mut roots = Vec::new();
    for (i, e) in region.entries().iter().enumerate() {
        if e.kind != EntryKind::Values || !at_or_below(&e.path, under) {
            continue;
        }
        let Some(node) = node_at(&mut nodes, &mut roots, &e.path) else {
            continue;
        };
        for (key, value) in &e.labels {
            if let Err(err) = node.set_label(key, printable(value)) {
                let path = printable(&e.path);
                eprintln!("statsfs: a label of {path} left out of the exposition: {err}");
            }
        }
        let mut descs = Vec::new();
        let mut words = Vec::new();
        for (s, (d, l)) in e.stats.iter().zip(&e.locations).enumerate() {
            let mut d = d.clone();
            d.offset = (words.len() * 8) as u32;
            let mut number = descriptor_of(&d);
            if l.signed && !d.kind.is_histogram() {
                number.ty = ValueType::I64;
            }
            descs.push(number);
            words.extend_from_slice(region.words(data, i, s));
        }
        match Schema::new_runtime(&e.schema, descs) {
            Ok(schema) => {
                // Entries of one source come as the writer's groups came: a later one
                // shadows an earlier value of its name there, so it does here.
                let group = ValueGroup::block(schema, Arc::new(Words(words))).shadowing();
                let _ = node.add(group);
            }
            Err(err) => eprintln!(
                "statsfs: the values of {} left out of the exposition: {err}",
                printable(&e.path)
            ),
        }
    }
    roots
}

/// The source at `path` in `nodes`, made with every source above it that is not yet there
/// (a new top-level one pushed to `roots`); `None` if a name is not a valid source name
/// (said on stderr).
fn node_at<'p>(
    nodes: &mut HashMap<&'p str, Source>,
    roots: &mut Vec<Source>,
    path: &'p str,
) -> Option<Source> {
    if let Some(node) = nodes.get(path) {
        return Some(node.clone());
    }
    let (parent, name) = match path.rsplit_once('/') {
        Some((parent, name)) => (node_at(nodes, roots, parent), name),
        None => (None, path),
    };
    let node = match Source::new(printable(name)) {
        Ok(node) => node,
        Err(e) => {
            let path = printable(path);
            eprintln!("statsfs: {path} and below left out of the exposition: {e}");
            return None;
        }
    };
    match parent {
        Some(parent) => parent.add_subordinate(&node).ok()?,
        None if path.contains('/') => return None,
        None => roots.push(node.clone()),
    }
    nodes.insert(path, node.clone());
    Some(node)
}

/// Values read once, served as they were: the block of a group of the rebuilt tree.
struct Words(Vec<u64>);

impl BlockSource for Words {
    fn read_block(&self, out: &mut [u64]) -> std::io::Result<()> {
        let n = out.len().min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        Ok(())
    }
}

/// `statsfs schema`: every distinct descriptor of what `reader` read, with the
/// attributes the binary layout does not carry (aggregation, mode, description) from the
/// mount's catalogue when `path` is in a statsfs mount.
pub(crate) fn schema(out: &mut dyn Write, reader: &Reader) -> Result<(), CliError> {
    let model = &reader.model;
    // One row per name and layout (the offset aside): a stat of every vCPU is one row.
    let mut seen: HashSet<(String, StatDesc)> = HashSet::new();
    let mut rows: Vec<[String; 8]> = Vec::new();
    for st in &model.stats {
        let mut key_desc = st.desc.clone();
        key_desc.name.clear();
        key_desc.offset = 0;
        if !seen.insert((st.name.clone(), key_desc)) {
            continue;
        }
        let (aggregation, mode, description) = match reader.catalogue.agreed(&st.name) {
            Some(c) => (
                c.aggregation.clone(),
                c.mode.clone(),
                if c.description.is_empty() {
                    "-".to_owned()
                } else {
                    c.description.clone()
                },
            ),
            None => (
                format!("{}*", st.number.aggregation.as_str()),
                format!(
                    "{:04o}",
                    statsfs_text::catalogue::file_mode(st.number.clearable)
                ),
                "-".to_owned(),
            ),
        };
        rows.push([
            st.name.clone(),
            st.desc.kind.as_str().to_owned(),
            st.desc.unit.as_str().to_owned(),
            scale(&st.desc),
            st.desc.size.to_string(),
            // The catalogue is a file of the mount: foreign text.
            printable(&aggregation).into_owned(),
            printable(&mode).into_owned(),
            printable(&description).into_owned(),
        ]);
    }
    let heads = [
        "name",
        "kind",
        "unit",
        "scale",
        "size",
        "aggregation",
        "mode",
        "description",
    ];
    let mut widths: Vec<usize> = heads.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.len());
        }
    }
    let mut text = String::new();
    let line = |cells: &[&str], text: &mut String| {
        let mut l = String::new();
        for (k, c) in cells.iter().enumerate() {
            if k + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  ", w = widths[k]));
            }
        }
        text.push_str(l.trim_end());
        text.push('\n');
    };
    line(&heads, &mut text);
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&cells, &mut text);
    }
    if rows.iter().any(|r| r[5].ends_with('*')) {
        text.push_str(
            "* not in a statsfs catalogue: the binary layout does not carry it; shown is \
             the rule statsfs folds such a stat by (max for peaks, sum otherwise)\n",
        );
    }
    out.write_all(text.as_bytes()).map_err(CliError::Output)
}
