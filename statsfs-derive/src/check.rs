//! Every rule that can be checked at compile time, each error on the span that broke it.
//! All rules run; all errors are reported together.

use std::collections::HashMap;

use statsfs_core::desc::{valid_label_name, valid_name, Rule};
use statsfs_core::{Aggregation, Unit};

use crate::ast::{Cell, Field, Input, Prim};
use crate::attr::KindAttr;
use crate::ctxt::Ctxt;

pub fn check(cx: &Ctxt, input: &Input<'_>) {
    if let Some(p) = input.generics.params.first() {
        cx.error_spanned_by(
            input.generics,
            match p {
                syn::GenericParam::Lifetime(_) => "#[derive(Stats)] does not support lifetime parameters: a stats struct must be 'static, as sources keep it alive",
                _ => "#[derive(Stats)] does not support generic parameters: each schema is one static table, so write one struct per layout",
            },
        );
    }
    if let Some(n) = &input.attrs.name {
        if n.value.is_empty()
            || !n
                .value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            cx.error_at(
                n.span,
                "a schema name uses letters, digits and `_` only (it prefixes metric names)",
            );
        }
    }
    let mut seen: HashMap<String, &syn::Ident> = HashMap::new();
    for f in &input.fields {
        check_field(cx, f);
        if f.attrs.flatten.is_some() || f.attrs.skip.is_some() {
            continue;
        }
        let name = f.name();
        let mut names = vec![name.clone()];
        names.extend(
            f.attrs
                .also
                .iter()
                .map(|a| format!("{name}_{}", a.value.as_str())),
        );
        for n in names {
            if let Some(first) = seen.get(&n) {
                cx.error_at(f.name_span(), format!("duplicate stat name `{n}`: field `{first}` already has it; use #[stat(rename = \"...\")] on one of them"));
            } else {
                seen.insert(n, f.ident);
            }
        }
    }
}

fn check_field(cx: &Ctxt, f: &Field<'_>) {
    let a = &f.attrs;
    for (marker, marker_name) in [(a.flatten, "flatten"), (a.skip, "skip")] {
        if marker.is_some() {
            for (key, span) in a.keys() {
                if key != marker_name && !(marker_name == "flatten" && key == "prefix") {
                    let hint = if key == "rename" && marker_name == "flatten" {
                        ": to rename a flattened struct's stats, give them a prefix, #[stat(flatten, prefix = \"rx_\")]"
                    } else {
                        ""
                    };
                    cx.error_at(
                        span,
                        format!("`{key}` cannot be combined with `{marker_name}`{hint}"),
                    );
                }
            }
            if let (Some(p), Some(_)) = (&a.prefix, a.flatten) {
                if !valid_name(&p.value) {
                    cx.error_at(p.span, format!("prefix `{}`: every name it starts must be a file name (no `/` or control character)", p.value.escape_debug()));
                }
            }
            return;
        }
    }
    if let Some(p) = &a.prefix {
        cx.error_at(
            p.span,
            "`prefix` is for a flattened struct: #[stat(flatten, prefix = \"rx_\")]",
        );
    }

    // Families: an array of cells needs a label name; a Family takes its enum's.
    match (&f.cell, &a.label) {
        (Cell::Array { cell, .. } | Cell::Family { cell, .. }, _) if cell.is_family() => {
            cx.error_spanned_by(f.ty, "a family's cells are cells, not another family: use one Family (or array) per dimension");
        }
        (Cell::Array { .. }, None) => cx.error_spanned_by(
            f.ty,
            "an array of cells is a family indexed by a number: name its label, #[stat(label = \"cpu\")]; to index it by an enum, use Family<YourEnum, Cell> with #[derive(statsfs::Label)] on the enum",
        ),
        (Cell::Family { .. }, Some(l)) => cx.error_at(
            l.span,
            "a Family takes its label name from its enum (#[label(name = \"...\")] on the enum); `label` is for arrays",
        ),
        (Cell::Array { .. }, Some(l))
            if !valid_label_name(&l.value) || l.value == "le" || l.value == "retired" =>
        {
            cx.error_at(l.span, format!("label `{}`: a label name is letters, digits and `_`, not starting with a digit, and not `le` or `retired` (the exposition's own labels)", l.value.escape_debug()));
        }
        (Cell::Array { .. }, Some(_)) => {}
        (_, Some(l)) => cx.error_at(
            l.span,
            "`label` is for an array of cells, a family: [Gauge<u32>; 4] with #[stat(label = \"queue\")]",
        ),
        (_, None) => {}
    }
    if f.cell.is_family() && !a.also.is_empty() {
        cx.error_at(
            a.also[0].span,
            "a family aggregates each member by one aggregation",
        );
    }
    let cell_ty: &syn::Type = match &f.cell {
        Cell::Family { cell_ty, .. } | Cell::Array { cell_ty, .. } => cell_ty,
        _ => f.ty,
    };

    match f.cell.member() {
        Cell::Plain(t) => cx.error_spanned_by(
            cell_ty,
            match t.as_str() {
                "f32" | "f64" => format!("`{t}` cannot be a stat field: stats are integers; store a count in a scaled unit (nanoseconds: a Counter with `unit = seconds, exponent = -9`)"),
                "usize" | "isize" | "u128" | "i128" => format!("`{t}` cannot be a stat field: stats are 64 bits wide at most and the same on every platform; use Counter or Gauge<u64>/Gauge<i64>"),
                _ => format!("`{t}` cannot be a stat field: stats are read while they are written, so a field must be a cell (Counter, Gauge<{t}>, Peak<{t}>, Flag, ...) or a std atomic; a field that is no stat takes #[stat(skip)]"),
            },
        ),
        Cell::PointerSized => cx.error_spanned_by(cell_ty, "pointer-sized atomics are not stats: their width depends on the platform; use AtomicU64 or AtomicI64"),
        Cell::LinearHistogram { buckets, width, buckets_span, width_span } => {
            if *buckets == Some(0) {
                cx.error_at(*buckets_span, "a histogram needs at least one bucket");
            }
            if *width == Some(0) {
                cx.error_at(*width_span, Rule::ZeroBucketWidth);
            }
        }
        Cell::LogHistogram { buckets: Some(0), buckets_span } => cx.error_at(*buckets_span, "a histogram needs at least one bucket"),
        _ => {}
    }

    if let Some(r) = &a.rename {
        let n = &r.value;
        if !valid_name(n) {
            cx.error_at(
                r.span,
                format!("`{}`: {}", n.escape_debug(), Rule::NotAFileName),
            );
        }
    }

    // The kind in effect, when the derive can see it.
    if let (Some(k), Some(fixed)) = (&a.kind, f.cell.fixed_kind()) {
        if k.value.as_str() != fixed {
            cx.error_at(
                k.span,
                format!(
                    "this field's type is always {fixed}; to make it {}, use {}",
                    k.value.as_str(),
                    cell_for(k.value)
                ),
            );
        }
    }
    let kind: Option<&str> = a
        .kind
        .as_ref()
        .map(|k| k.value.as_str())
        .or(f.cell.default_kind());
    let prim = f.cell.prim();

    if let (Some(c), Some(r)) = (a.clear, a.read_only) {
        let _ = r;
        cx.error_at(c, "`clear` and `read_only` contradict each other; keep one");
    }
    if let (Some(c), Some("instant")) = (a.clear, kind) {
        cx.error_at(
            c,
            format!(
                "`clear` on an instant value: {}; make it cumulative or peak, or drop `clear`",
                Rule::InstantNotClearable
            ),
        );
    }

    // Unit, base and exponent, by the kernel's rules.
    let unit = a.unit.as_ref().map(|u| u.value);
    if let Some(u) = &a.unit {
        if u.value == Unit::Boolean
            && prim.is_some_and(|p| p != Prim::Bool)
            && !f.cell.is_histogram()
        {
            cx.error_at(
                u.span,
                "unit `boolean` is for bool stats (Flag, AtomicBool)",
            );
        }
        if u.value == Unit::Boolean && matches!(kind, Some("cumulative" | "log_histogram")) {
            cx.error_at(u.span, Rule::BooleanKind);
        }
        if prim == Some(Prim::Bool) && u.value != Unit::Boolean {
            cx.error_at(u.span, "a bool stat has unit `boolean`");
        }
    }
    if let Some(e) = &a.exponent {
        // The range is the core's rule (`Unit::exponent_allowed`); the hints are ours.
        let v = e.value;
        let u = unit.unwrap_or(if prim == Some(Prim::Bool) {
            Unit::Boolean
        } else {
            Unit::None
        });
        if let Ok(exp) = i16::try_from(v) {
            if !u.exponent_allowed(exp) {
                let rule = Rule::Exponent(u);
                let msg = match u {
                    Unit::Boolean => rule.to_string(),
                    Unit::Seconds => {
                        format!("exponent {v} is out of range: {rule} (nanoseconds: exponent = -9)")
                    }
                    _ => format!(
                        "exponent {v} is out of range: {rule} (did you mean unit = seconds?)"
                    ),
                };
                cx.error_at(e.span, msg);
            }
        }
    }
    if let (Some(b), Some(Unit::Boolean)) = (&a.base, unit) {
        if b.value != 10 {
            cx.error_at(b.span, "a boolean takes base 10 and exponent 0");
        }
    }

    // Enum-valued stats: a state, named value by value.
    if let Some(n) = &a.names {
        if n.value.is_empty() {
            cx.error_at(n.span, "`names` needs at least one name");
        }
        for (i, name) in n.value.iter().enumerate() {
            if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                cx.error_at(
                    n.span,
                    format!(
                        "value name {name:?} must be a non-empty word (it is what the file shows)"
                    ),
                );
            } else if n.value[..i].contains(name) {
                cx.error_at(n.span, format!("value name `{name}` appears twice"));
            }
        }
        if kind.is_some_and(|k| k != "instant")
            || prim.is_some_and(|p| p != Prim::Int { signed: false })
            || f.cell.is_histogram()
        {
            cx.error_at(n.span, format!("`names`: {}; use Gauge<u8>, Gauge<u32> or an unsigned atomic with kind = instant", Rule::NamesNeedAState));
        }
    }

    // Several aggregations: each once, none of them `none`.
    let all: Vec<_> = a.aggregate.iter().chain(&a.also).collect();
    for (i, ag) in all.iter().enumerate() {
        if all[..i].iter().any(|o| o.value == ag.value) {
            cx.error_at(ag.span, format!("`{}` is listed twice", ag.value.as_str()));
        } else if all.len() > 1 && ag.value == Aggregation::None {
            cx.error_at(
                ag.span,
                "`none` means not aggregated: it cannot be one of several aggregations",
            );
        }
    }
    // Aggregation against the type.
    for ag in all {
        if prim == Some(Prim::Bool) && ag.value == Aggregation::Avg {
            cx.error_at(ag.span, Rule::AverageOfBool);
        }
        if f.cell.is_histogram() && !matches!(ag.value, Aggregation::Sum | Aggregation::None) {
            cx.error_at(
                ag.span,
                format!(
                    "a histogram cannot aggregate by {}: {}",
                    ag.value.as_str(),
                    Rule::HistogramAggregation
                ),
            );
        }
    }
}

fn cell_for(k: KindAttr) -> &'static str {
    match k {
        KindAttr::Cumulative => "Counter or a std atomic",
        KindAttr::Instant => "Gauge<T> or a std atomic",
        KindAttr::Peak => "Peak<T> or a std atomic",
    }
}
