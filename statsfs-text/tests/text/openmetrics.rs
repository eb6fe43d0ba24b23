//! The OpenMetrics view end to end: exact text, aggregates, and the real parsers
//! (`promtool check metrics`, prometheus-client's classic and OpenMetrics parsers).
//!
//! The tools are found on PATH (`bash .ci/setup` installs them); without one, the test
//! that needs it is skipped (`SKIPPED: <test>: <reason>`, see `common::skip`).

use crate::common;

use std::sync::Arc;

use statsfs::openmetrics::{Encoder, Format, Options};
use statsfs::Source;

fn encode(root: &Source, format: Format) -> String {
    let mut e = Encoder::new();
    let out = String::from_utf8(e.encode(std::slice::from_ref(root), format).to_vec()).unwrap();
    assert_eq!(e.skipped(), 0);
    out
}

fn text(format: Format) -> String {
    encode(&common::tree().root, format)
}

const VCPU0: &str = r#"path="kvm/1234-5/vcpu0",vcpu="0",vm="1234-5""#;
const VCPU1: &str =
    r#"path="kvm/1234-5/vcpu\"1\\",vcpu="1",note="a \"quoted\" back\\slash",vm="1234-5""#;

#[test]
fn prometheus_text_names_types_units_and_labels() {
    let t = text(Format::Prometheus);
    let has = |line: &str| assert!(t.lines().any(|l| l == line), "no line `{line}` in\n{t}");
    has("# HELP vcpu_exits_total Guest exits handled");
    has("# TYPE vcpu_exits_total counter");
    has(&format!("vcpu_exits_total{{{VCPU0}}} 10"));
    has(&format!("vcpu_exits_total{{{VCPU1}}} 11"));
    // halt_ns: nanoseconds become seconds, exactly; the abbreviation gives way to the unit.
    has("# TYPE vcpu_halt_seconds_total counter");
    has(&format!("vcpu_halt_seconds_total{{{VCPU0}}} 0.0000015"));
    has(&format!("vcpu_halt_seconds_total{{{VCPU1}}} 1.0000015"));
    // Instant and peak are gauges; signed values keep their sign; bool reads 0/1.
    has("# TYPE vcpu_drift_seconds gauge");
    has(&format!("vcpu_drift_seconds{{{VCPU1}}} -0.0005"));
    has("# TYPE vcpu_queue_depth gauge");
    has(&format!("vcpu_queue_depth{{{VCPU1}}} 8"));
    has(&format!("vcpu_running{{{VCPU1}}} 0"));
    has(&format!("vcpu_touched_bytes{{{VCPU0}}} 2097152"));
    has(&format!("vcpu_guest_cycles_total{{{VCPU0}}} 1099511627776"));
    // HELP escapes backslash and newline (not quotes, in this format).
    has(r#"# HELP vcpu_pending_irqs Interrupts waiting, "quoted" and with a back\\slash"#);
    has(r#"# HELP kernel_dirty Whether the log is dirty\nsecond line with \\ and ""#);
    has("# HELP vcpu_undocumented_total statsfs value undocumented of schema vcpu");
    has(r#"kernel_pages_total{path="kvm/1234-5",vm="1234-5"} 42e3"#);
    // Histograms: inclusive integer bounds, scaled; cumulative counts; +Inf is the count.
    has("# TYPE vcpu_exit_latency_seconds histogram");
    for (le, n) in [
        ("0", 1),
        ("0.000000001", 2),
        ("0.000000003", 4),
        ("0.000000007", 4),
        ("0.000000015", 4),
        ("+Inf", 6),
    ] {
        has(&format!(
            "vcpu_exit_latency_seconds_bucket{{{VCPU0},le=\"{le}\"}} {n}"
        ));
    }
    for (le, n) in [("9", 2), ("19", 3), ("29", 3), ("+Inf", 5)] {
        has(&format!("vcpu_queue_len_bucket{{{VCPU1},le=\"{le}\"}} {n}"));
    }
    assert!(!t.contains("_sum") && !t.contains("_count"), "{t}");
    // Each family's metadata once, its series together.
    assert_eq!(t.matches("# TYPE vcpu_exits_total ").count(), 1);
    assert!(!t.contains("# EOF"));
}

#[test]
fn openmetrics_text_declares_units_and_ends_with_eof() {
    let t = text(Format::OpenMetrics);
    let has = |line: &str| assert!(t.lines().any(|l| l == line), "no line `{line}` in\n{t}");
    has("# TYPE vcpu_exits counter");
    has(&format!("vcpu_exits_total{{{VCPU0}}} 10"));
    has("# TYPE vcpu_halt_seconds counter");
    has("# UNIT vcpu_halt_seconds seconds");
    has("# UNIT vcpu_touched_bytes bytes");
    has("# UNIT vcpu_guest_cycles cycles");
    has("# UNIT vcpu_exit_latency_seconds seconds");
    has(r#"# HELP vcpu_pending_irqs Interrupts waiting, \"quoted\" and with a back\\slash"#);
    assert!(!t.contains("_total counter"), "{t}");
    assert!(t.ends_with("\n# EOF\n"), "{t}");
    // The same samples as the 0.0.4 format: only metadata differs.
    let samples = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(samples(&t), samples(&text(Format::Prometheus)));
}

#[test]
fn aggregates_are_left_out_so_sums_do_not_double_count() {
    let tree = common::tree();
    let t = encode(&tree.root, Format::Prometheus);
    // Two leaves per stat, none from the two aggregate groups above them.
    let exits: Vec<u64> = t
        .lines()
        .filter(|l| l.starts_with("vcpu_exits_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(exits, [10, 11]);
    assert_eq!(
        exits.iter().sum::<u64>(),
        tree.root.get("exits").unwrap().as_u64()
    );
    assert!(!t.contains(r#"path="kvm""#) && !t.contains(r#"path="kvm/1234-5"}"#));
    // Hidden sources and values are leaves too: in the exposition, as in the aggregates.
    let halts: u64 = t
        .lines()
        .filter(|l| l.starts_with("vcpu_hidden_halts_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(halts, tree.root.get("hidden_halts").unwrap().as_u64());
    // Without hidden: the hidden vCPU and the hidden value are gone.
    let mut e = Encoder::with_options(Options {
        hidden: false,
        ..Options::default()
    });
    let t = String::from_utf8(
        e.encode(std::slice::from_ref(&tree.root), Format::Prometheus)
            .to_vec(),
    )
    .unwrap();
    assert!(
        !t.contains("hidden_halts") && !t.contains("vcpu=\"1\""),
        "{t}"
    );
    assert!(t.contains(&format!("vcpu_exits_total{{{VCPU0}}} 10")));
}

#[test]
fn what_retired_sources_left_is_a_leaf_so_sums_never_fall() {
    let tree = common::tree();
    let vm = tree.root.subordinate("1234-5").unwrap();
    vm.set_label("retired", "gives way").unwrap();
    let sum = |t: &str, family: &str| -> u64 {
        t.lines()
            .filter(|l| l.starts_with(family))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    let before = encode(&tree.root, Format::Prometheus);
    let vcpu0 = vm.subordinate("vcpu0").unwrap();
    vm.retire_subordinate(&vcpu0).unwrap();
    let t = encode(&tree.root, Format::Prometheus);
    assert_eq!(
        sum(&t, "vcpu_exits_total{"),
        sum(&before, "vcpu_exits_total{")
    );
    assert_eq!(
        sum(&t, "vcpu_exits_total{"),
        tree.root.get("exits").unwrap().as_u64()
    );
    let has = |line: &str| assert!(t.lines().any(|l| l == line), "no line `{line}` in\n{t}");
    has(r#"vcpu_exits_total{path="kvm/1234-5",vm="1234-5",retired="true"} 10"#);
    // Histograms are kept bucket by bucket; gauges are not kept at all.
    has(r#"vcpu_queue_len_bucket{path="kvm/1234-5",vm="1234-5",retired="true",le="+Inf"} 5"#);
    assert!(
        !t.lines()
            .any(|l| l.starts_with("vcpu_pending_irqs{") && l.contains("retired=\"true\"")),
        "{t}"
    );
    assert!(
        !t.lines()
            .any(|l| l.contains("retired=\"true\"") && l.contains("gives way")),
        "{t}"
    );
}

#[test]
fn the_encoder_is_reusable_and_follows_the_tree() {
    let tree = common::tree();
    let mut e = Encoder::new();
    let roots = [tree.root.clone()];
    let first = e.encode(&roots, Format::Prometheus).to_vec();
    assert_eq!(e.encode(&roots, Format::Prometheus), &first[..]);
    tree.vcpus[0].exits.add(5);
    let t = String::from_utf8(e.encode(&roots, Format::Prometheus).to_vec()).unwrap();
    assert!(t.contains(&format!("vcpu_exits_total{{{VCPU0}}} 15")));
    // A source removed: its series and (once unused) its families go.
    let vm = tree.root.subordinate("1234-5").unwrap();
    tree.root.remove_subordinate(&vm).unwrap();
    assert_eq!(e.encode(&roots, Format::Prometheus), b"");
    assert_eq!(e.encode(&roots, Format::OpenMetrics), b"# EOF\n");
    tree.root.add_subordinate(&vm).unwrap();
    assert_eq!(e.encode(&roots, Format::Prometheus), t.as_bytes());
    // Several roots share families.
    let other = common::tree();
    let t = String::from_utf8(
        e.encode(&[tree.root.clone(), other.root.clone()], Format::Prometheus)
            .to_vec(),
    )
    .unwrap();
    assert_eq!(t.matches("# TYPE vcpu_exits_total counter").count(), 1);
    assert_eq!(t.matches("vcpu_exits_total{").count(), 4);
}

#[test]
fn clashing_names_are_skipped_not_written() {
    use statsfs::{Descriptor, Kind, Schema, ValueGroup, ValueType};
    // `a.b` and `a_b` sanitize to one name; as counter and gauge they cannot share it.
    let s1 = Schema::new_runtime(
        "s",
        vec![Descriptor::new("a.b", ValueType::U64, Kind::Cumulative)],
    )
    .unwrap();
    let s2 = Schema::new_runtime(
        "s",
        vec![Descriptor::new("a_b", ValueType::U64, Kind::Instant)],
    )
    .unwrap();
    let root = Source::new("r").unwrap();
    root.add(ValueGroup::block(
        s1,
        Arc::new(|o: &mut [u64]| {
            o[0] = 1;
            Ok(())
        }),
    ))
    .unwrap();
    let child = Source::new("c").unwrap();
    child
        .add(ValueGroup::block(
            s2,
            Arc::new(|o: &mut [u64]| {
                o[0] = 2;
                Ok(())
            }),
        ))
        .unwrap();
    root.add_subordinate(&child).unwrap();
    let mut e = Encoder::new();
    let t = String::from_utf8(e.encode(&[root], Format::Prometheus).to_vec()).unwrap();
    assert_eq!(
        t,
        "# HELP s_a_b_total statsfs value a.b of schema s\n# TYPE s_a_b_total counter\ns_a_b_total{path=\"r\"} 1\n"
    );
    assert_eq!((e.series(), e.skipped()), (1, 1));
}

#[test]
fn promtool_finds_no_problem() {
    promtool_check("promtool_finds_no_problem", &text(Format::Prometheus));
}

/// `promtool check metrics` on `t` must succeed and report nothing (skipped, as the
/// skip policy says, without promtool).
fn promtool_check(test: &str, t: &str) {
    let Some(promtool) = common::tool(test, "promtool") else {
        return;
    };
    let out = common::run_with_input(&promtool, &["check", "metrics"], t);
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool: {report}\non:\n{t}");
    assert_eq!(report.trim(), "", "promtool reported problems on:\n{t}");
}

/// Parses `input` with prometheus-client's parser for `format` and prints one line per
/// sample: `family<TAB>type<TAB>unit<TAB>sample<TAB>labels as sorted JSON<TAB>value`.
fn python_parse(test: &str, format: Format, input: &str) -> Option<Vec<String>> {
    let py = common::python(test)?;
    let module = match format {
        Format::Prometheus => "prometheus_client.parser",
        Format::OpenMetrics => "prometheus_client.openmetrics.parser",
    };
    let script = format!(
        "import sys, json\n\
         from {module} import text_string_to_metric_families as parse\n\
         for f in parse(sys.stdin.read()):\n\
         \x20   for s in f.samples:\n\
         \x20       print(f.name, f.type, f.unit or '-', s.name, json.dumps(s.labels, sort_keys=True), repr(float(s.value)), sep='\\t')\n"
    );
    let out = common::run_with_input(&py, &["-c", &script], input);
    assert!(
        out.status.success(),
        "{module} rejected the text: {}\n{input}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

fn check_parsed(lines: &[String], unit_of_seconds: &str) {
    let has = |l: &str| {
        assert!(
            lines.iter().any(|x| x == l),
            "no `{l}` in\n{}",
            lines.join("\n")
        )
    };
    let vcpu1 = r#""note": "a \"quoted\" back\\slash", "path": "kvm/1234-5/vcpu\"1\\", "vcpu": "1", "vm": "1234-5""#;
    has(&format!(
        "vcpu_exits\tcounter\t-\tvcpu_exits_total\t{{{vcpu1}}}\t11.0"
    ));
    has(&format!(
        "vcpu_halt_seconds\tcounter\t{unit_of_seconds}\tvcpu_halt_seconds_total\t{{{vcpu1}}}\t1.0000015"
    ));
    has(&format!(
        "vcpu_drift_seconds\tgauge\t{unit_of_seconds}\tvcpu_drift_seconds\t{{{vcpu1}}}\t-0.0005"
    ));
    has(&format!(
        "vcpu_exit_latency_seconds\thistogram\t{unit_of_seconds}\tvcpu_exit_latency_seconds_bucket\t{{\"le\": \"+Inf\", {vcpu1}}}\t6.0"
    ));
    has("kernel_pages\tcounter\t-\tkernel_pages_total\t{\"path\": \"kvm/1234-5\", \"vm\": \"1234-5\"}\t42000.0");
    // Every sample of the text comes back.
    assert_eq!(lines.len(), 2 * (10 + 6 + 4) + 2, "{}", lines.join("\n"));
}

#[test]
fn prometheus_client_classic_parser_reads_the_text_format() {
    let Some(lines) = python_parse(
        "prometheus_client_classic_parser_reads_the_text_format",
        Format::Prometheus,
        &text(Format::Prometheus),
    ) else {
        return;
    };
    // The classic parser knows no units.
    check_parsed(&lines, "-");
}

#[test]
fn prometheus_client_openmetrics_parser_reads_openmetrics() {
    let Some(lines) = python_parse(
        "prometheus_client_openmetrics_parser_reads_openmetrics",
        Format::OpenMetrics,
        &text(Format::OpenMetrics),
    ) else {
        return;
    };
    check_parsed(&lines, "seconds");
}

mod dimensions {
    use statsfs::cell::{Counter, Gauge, LinearHistogram, WithSum};
    use statsfs::openmetrics::Format;
    use statsfs::{Family, Label, Source, Stats};

    #[derive(Clone, Copy, Label)]
    #[label(name = "op")]
    pub enum Op {
        Get,
        #[label(rename = "put \"quoted\"")]
        Put,
    }

    #[derive(Stats)]
    #[stats(name = "table")]
    pub struct TableStat {
        /// Operations, by kind
        pub ops: Family<Op, Counter>,
        /// Time an operation took
        #[stat(unit = seconds, exponent = -9)]
        pub op_ns: LinearHistogram<3, 1000, WithSum>,
        /// Time an operation took, by kind
        #[stat(unit = seconds, exponent = -9)]
        pub lat_ns: Family<Op, LinearHistogram<2, 1000, WithSum>>,
        /// Pending compactions, by level
        #[stat(label = "level")]
        pub pending: [Gauge<u32>; 2],
    }

    pub fn tree() -> Source {
        let root = Source::new("db").unwrap();
        let users = Source::new("users").unwrap();
        let t = std::sync::Arc::new(TableStat::new());
        t.ops[Op::Get].add(3);
        t.ops[Op::Put].inc();
        for v in [500, 1500, 2500, 7000] {
            t.op_ns.record(v);
        }
        t.lat_ns[Op::Get].record(10);
        t.lat_ns[Op::Put].record(2000);
        t.pending[1].set(4);
        users.add(t).unwrap();
        root.add_subordinate(&users).unwrap();
        root
    }

    pub const TEXT: Format = Format::Prometheus;
}

#[test]
fn a_family_is_one_metric_with_a_label_and_a_summed_histogram_has_sum_and_count() {
    let root = dimensions::tree();
    let t = encode(&root, dimensions::TEXT);
    let want = [
        "# HELP table_ops_total Operations, by kind",
        "# TYPE table_ops_total counter",
        r#"table_ops_total{path="db/users",op="get"} 3"#,
        r#"table_ops_total{path="db/users",op="put \"quoted\""} 1"#,
        "# TYPE table_op_seconds histogram",
        r#"table_op_seconds_bucket{path="db/users",le="0.000000999"} 1"#,
        r#"table_op_seconds_bucket{path="db/users",le="0.000001999"} 2"#,
        r#"table_op_seconds_bucket{path="db/users",le="+Inf"} 4"#,
        r#"table_op_seconds_count{path="db/users"} 4"#,
        r#"table_op_seconds_sum{path="db/users"} 0.0000115"#,
        r#"table_lat_seconds_bucket{path="db/users",op="get",le="0.000000999"} 1"#,
        r#"table_lat_seconds_sum{path="db/users",op="get"} 0.00000001"#,
        r#"table_lat_seconds_count{path="db/users",op="put \"quoted\""} 1"#,
        r#"table_pending{path="db/users",level="0"} 0"#,
        r#"table_pending{path="db/users",level="1"} 4"#,
    ];
    for line in want {
        assert!(t.lines().any(|l| l == line), "no line `{line}` in\n{t}");
    }
    // One family each: no `table_ops_get_total`, no separate `_sum` counter.
    assert_eq!(t.matches("# TYPE").count(), 4, "{t}");
    assert!(!t.contains("op_ns_sum"), "{t}");
}

#[test]
fn promtool_and_both_parsers_read_families_and_sums() {
    let root = dimensions::tree();
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let t = encode(&root, format);
        if format == Format::Prometheus {
            promtool_check("promtool_and_both_parsers_read_families_and_sums", &t);
        }
        let Some(lines) = python_parse(
            "promtool_and_both_parsers_read_families_and_sums",
            format,
            &t,
        ) else {
            return;
        };
        let has = |l: &str| {
            assert!(
                lines.iter().any(|x| x == l),
                "no `{l}` in\n{}",
                lines.join("\n")
            )
        };
        has("table_ops\tcounter\t-\ttable_ops_total\t{\"op\": \"get\", \"path\": \"db/users\"}\t3.0");
        has("table_op_seconds\thistogram\t-\ttable_op_seconds_sum\t{\"path\": \"db/users\"}\t1.15e-05".replace("\t-\t", if format == Format::OpenMetrics { "\tseconds\t" } else { "\t-\t" }).as_str());
        has("table_lat_seconds\thistogram\t-\ttable_lat_seconds_count\t{\"op\": \"put \\\"quoted\\\"\", \"path\": \"db/users\"}\t1.0".replace("\t-\t", if format == Format::OpenMetrics { "\tseconds\t" } else { "\t-\t" }).as_str());
    }
}

/// A sample as a set member: name, labels sorted (`le` as a number), value.
type Sample = (String, Vec<(String, String)>, u64);

/// Every sample line of Prometheus text 0.0.4, unescaped; values and `le` as `f64` bits.
fn samples_of_text(text: &str) -> Vec<Sample> {
    let num = |s: &str| -> u64 {
        match s {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            s => s
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("not a number: {s}")),
        }
        .to_bits()
    };
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, rest) = line.split_at(line.find(['{', ' ']).unwrap());
        let mut labels = Vec::new();
        let mut rest = rest;
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices();
            let (mut key, mut value, mut in_value) = (String::new(), String::new(), false);
            while let Some((i, c)) = chars.next() {
                match (in_value, c) {
                    (false, '}') => {
                        rest = &r[i + 1..];
                        break;
                    }
                    (false, '=') => {
                        chars.next(); // the opening quote
                        in_value = true;
                    }
                    (false, ',') => {}
                    (false, c) => key.push(c),
                    (true, '\\') => match chars.next().map(|x| x.1) {
                        Some('n') => value.push('\n'),
                        Some(c) => value.push(c),
                        None => {}
                    },
                    (true, '"') => {
                        in_value = false;
                        let v = std::mem::take(&mut value);
                        let v = if key == "le" { num(&v).to_string() } else { v };
                        labels.push((std::mem::take(&mut key), v));
                    }
                    (true, c) => value.push(c),
                }
            }
        }
        labels.sort();
        out.push((name.to_owned(), labels, num(rest.trim())));
    }
    out.sort();
    out
}

/// The same samples, from [`Encoder::collect`].
fn samples_of_collect(roots: &[Source]) -> Vec<Sample> {
    use statsfs::openmetrics::MetricType;
    let mut e = Encoder::new();
    let collected = e.collect(roots);
    let mut out = Vec::new();
    for f in collected.families() {
        for s in f.series() {
            let labels: Vec<(String, String)> = s
                .labels()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            let mut push = |suffix: &str, extra: Option<(&str, String)>, v: f64| {
                let mut l = labels.clone();
                l.extend(extra.map(|(k, v)| (k.to_owned(), v)));
                l.sort();
                out.push((format!("{}{suffix}", f.name()), l, v.to_bits()));
            };
            match f.metric_type() {
                MetricType::Counter => push("_total", None, s.value()),
                MetricType::Gauge => push("", None, s.value()),
                MetricType::Histogram => {
                    let bounds: Vec<f64> = f.bounds().chain([f64::INFINITY]).collect();
                    let mut cum = 0u64;
                    for (b, n) in bounds.iter().zip(s.buckets()) {
                        cum += n;
                        push("_bucket", Some(("le", b.to_bits().to_string())), cum as f64);
                    }
                    if let Some(sum) = s.sum() {
                        push("_count", None, s.count() as f64);
                        push("_sum", None, sum);
                    }
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn collect_gives_the_series_encode_writes() {
    let retired = {
        let root = Source::new("svc").unwrap();
        let t = common::tree();
        root.add_subordinate(&t.root).unwrap();
        let vm = t.root.subordinate("1234-5").unwrap();
        let gone = vm.subordinates().pop().unwrap();
        vm.retire_subordinate(&gone).unwrap();
        root
    };
    for root in [common::tree().root, dimensions::tree(), retired] {
        let text = encode(&root, Format::Prometheus);
        if root.name() == "svc" {
            assert!(text.contains("retired=\"true\""), "{text}");
        }
        let from_text = samples_of_text(&text);
        assert!(from_text.len() > 5, "{text}");
        assert_eq!(
            samples_of_collect(std::slice::from_ref(&root)),
            from_text,
            "{text}"
        );
    }
}
