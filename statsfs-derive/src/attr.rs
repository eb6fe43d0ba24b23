//! The `#[stats(...)]` and `#[stat(...)]` attributes, parsed into plain values with their
//! spans. Only syntax is checked here; the rules live in `check.rs`.

use proc_macro2::Span;
use statsfs_core::{Aggregation, Unit};
use syn::spanned::Spanned as _;
use syn::{Attribute, Expr, ExprLit, ExprUnary, Lit, LitStr, Path, UnOp};

use crate::ctxt::Ctxt;

/// A value and where it was written.
#[derive(Clone)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

/// `#[stats(crate = path, name = "...", no_new)]` on the struct.
#[derive(Default)]
pub struct Container {
    pub krate: Option<Path>,
    pub name: Option<Spanned<String>>,
    /// No `const fn new()`.
    pub no_new: Option<Span>,
}

/// The kinds an attribute may name; histograms come from the field type.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum KindAttr {
    Cumulative,
    Instant,
    Peak,
}

impl KindAttr {
    pub fn as_str(self) -> &'static str {
        match self {
            KindAttr::Cumulative => "cumulative",
            KindAttr::Instant => "instant",
            KindAttr::Peak => "peak",
        }
    }
}

/// `#[stat(...)]` on a field.
#[derive(Default)]
pub struct Field {
    pub rename: Option<Spanned<String>>,
    pub kind: Option<Spanned<KindAttr>>,
    pub unit: Option<Spanned<Unit>>,
    pub base: Option<Spanned<u32>>,
    pub exponent: Option<Spanned<i64>>,
    pub aggregate: Option<Spanned<Aggregation>>,
    /// `aggregate = [sum, avg]`: the aggregations after the first, each a value of its
    /// own named `<stat>_<aggregation>`.
    pub also: Vec<Spanned<Aggregation>>,
    /// `prefix = "rx_"` on a flatten: the nested stats' names start with it.
    pub prefix: Option<Spanned<String>>,
    /// `label = "cpu"` on an array of cells: the name of the label its index is.
    pub label: Option<Spanned<String>>,
    pub clear: Option<Span>,
    pub read_only: Option<Span>,
    pub hidden: Option<Span>,
    pub flatten: Option<Span>,
    pub skip: Option<Span>,
    /// `names = ["RUNNABLE", "HALTED"]`: an enum-valued stat.
    pub names: Option<Spanned<Vec<String>>>,
}

impl Field {
    /// Every key given, with its span, for rules like "flatten takes no other key".
    pub fn keys(&self) -> Vec<(&'static str, Span)> {
        let mut v = Vec::new();
        let mut put = |k, s: Option<Span>| {
            if let Some(s) = s {
                v.push((k, s))
            }
        };
        put("rename", self.rename.as_ref().map(|x| x.span));
        put("kind", self.kind.as_ref().map(|x| x.span));
        put("unit", self.unit.as_ref().map(|x| x.span));
        put("base", self.base.as_ref().map(|x| x.span));
        put("exponent", self.exponent.as_ref().map(|x| x.span));
        put("aggregate", self.aggregate.as_ref().map(|x| x.span));
        put("clear", self.clear);
        put("read_only", self.read_only);
        put("hidden", self.hidden);
        put("flatten", self.flatten);
        put("skip", self.skip);
        put("names", self.names.as_ref().map(|x| x.span));
        put("prefix", self.prefix.as_ref().map(|x| x.span));
        put("label", self.label.as_ref().map(|x| x.span));
        v
    }
}

const FIELD_KEYS: &str = "rename, kind, unit, base, exponent, aggregate, clear, read_only, hidden, names, label, flatten, prefix, skip";

fn set<T>(cx: &Ctxt, slot: &mut Option<T>, value: T, key: &syn::Path) {
    if slot.is_some() {
        cx.error_spanned_by(
            key,
            format!("duplicate `{}` in #[stat(...)]", path_name(key)),
        );
    } else {
        *slot = Some(value);
    }
}

fn path_name(p: &syn::Path) -> String {
    p.get_ident()
        .map(|i| i.to_string())
        .unwrap_or_else(|| "?".into())
}

/// An integer literal, possibly negated.
fn int_expr(e: &Expr) -> Option<i128> {
    match e {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<i128>().ok(),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => int_expr(expr).map(|v| -v),
        Expr::Group(g) => int_expr(&g.expr),
        Expr::Paren(p) => int_expr(&p.expr),
        _ => None,
    }
}

/// The word after `=`: an identifier (`unit = seconds`) or a string (`unit = "seconds"`).
fn word(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<Spanned<String>> {
    let expr: Expr = meta.value()?.parse()?;
    let span = expr.span();
    match &expr {
        Expr::Path(p) if p.path.get_ident().is_some() => Ok(Spanned {
            value: p.path.get_ident().unwrap().to_string(),
            span,
        }),
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(Spanned {
            value: s.value(),
            span,
        }),
        _ => Err(syn::Error::new(
            span,
            format!("expected a word after `{} =`", path_name(&meta.path)),
        )),
    }
}

pub fn container(cx: &Ctxt, attrs: &[Attribute]) -> Container {
    let mut c = Container::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("stats")) {
        let r = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                let v = meta.value()?;
                let path: Path = if v.peek(LitStr) {
                    v.parse::<LitStr>()?.parse()?
                } else {
                    v.parse()?
                };
                set(cx, &mut c.krate, path, &meta.path);
            } else if meta.path.is_ident("name") {
                let s: LitStr = meta.value()?.parse()?;
                set(
                    cx,
                    &mut c.name,
                    Spanned {
                        value: s.value(),
                        span: s.span(),
                    },
                    &meta.path,
                );
            } else if meta.path.is_ident("no_new") {
                set(cx, &mut c.no_new, meta.path.span(), &meta.path);
            } else {
                if meta.input.peek(syn::Token![=]) {
                    let _: Expr = meta.value()?.parse()?;
                }
                let key = path_name(&meta.path);
                let message = match statsfs_core::desc::closest(&key, &["crate", "name", "no_new"]) {
                    Some(c) => format!(
                        "unknown stats attribute `{key}`: did you mean `{c}`? (expected `crate`, `name` or `no_new`)"
                    ),
                    None => format!("unknown stats attribute `{key}`; expected `crate`, `name` or `no_new`"),
                };
                cx.error_spanned_by(&meta.path, message);
            }
            Ok(())
        });
        if let Err(e) = r {
            cx.syn_error(e);
        }
    }
    c
}

pub fn field(cx: &Ctxt, attrs: &[Attribute]) -> Field {
    let mut f = Field::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("stat")) {
        let r = attr.parse_nested_meta(|meta| {
            let key = path_name(&meta.path);
            let span = meta.path.span();
            match key.as_str() {
                "rename" => {
                    let s: LitStr = meta.value()?.parse()?;
                    set(cx, &mut f.rename, Spanned { value: s.value(), span: s.span() }, &meta.path);
                }
                "kind" => {
                    let w = word(&meta)?;
                    let k = match w.value.as_str() {
                        "cumulative" => KindAttr::Cumulative,
                        "instant" => KindAttr::Instant,
                        "peak" => KindAttr::Peak,
                        "linear_histogram" | "log_histogram" | "histogram" => {
                            cx.error_at(w.span, "histograms are chosen by the field type: use LinearHistogram<N, W> or LogHistogram<N>");
                            return Ok(());
                        }
                        other => {
                            let kinds = ["cumulative", "instant", "peak"];
                            let message = match statsfs_core::desc::closest(other, &kinds) {
                                Some(c) => format!("unknown kind `{other}`: did you mean `{c}`? (expected cumulative, instant or peak)"),
                                None => format!("unknown kind `{other}`; expected cumulative, instant or peak"),
                            };
                            cx.error_at(w.span, message);
                            return Ok(());
                        }
                    };
                    set(cx, &mut f.kind, Spanned { value: k, span: w.span }, &meta.path);
                }
                "unit" => {
                    let w = word(&meta)?;
                    match w.value.parse::<Unit>() {
                        Ok(u) => set(cx, &mut f.unit, Spanned { value: u, span: w.span }, &meta.path),
                        Err(e) => cx.error_at(w.span, e),
                    }
                }
                "aggregate" => {
                    // One word, or a list: `aggregate = [sum, avg]`.
                    let e: Expr = meta.value()?.parse()?;
                    let words: Vec<&Expr> = match &e {
                        Expr::Array(a) => a.elems.iter().collect(),
                        other => vec![other],
                    };
                    if words.is_empty() {
                        cx.error_spanned_by(&e, "`aggregate` takes an aggregation or a list of them: aggregate = [sum, avg]");
                        return Ok(());
                    }
                    let mut parsed = Vec::new();
                    for w in words {
                        let text = match w {
                            Expr::Path(p) if p.path.get_ident().is_some() => p.path.get_ident().unwrap().to_string(),
                            Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => s.value(),
                            other => {
                                cx.error_spanned_by(other, "expected an aggregation: sum, min, max, avg, count_zero or none");
                                return Ok(());
                            }
                        };
                        match text.parse::<Aggregation>() {
                            Ok(a) => parsed.push(Spanned { value: a, span: w.span() }),
                            Err(err) => cx.error_at(w.span(), err),
                        }
                    }
                    let mut parsed = parsed.into_iter();
                    if let Some(first) = parsed.next() {
                        set(cx, &mut f.aggregate, first, &meta.path);
                        f.also.extend(parsed);
                    }
                }
                "prefix" | "label" => {
                    let s: LitStr = meta.value()?.parse()?;
                    let slot = if key == "prefix" { &mut f.prefix } else { &mut f.label };
                    set(cx, slot, Spanned { value: s.value(), span: s.span() }, &meta.path);
                }
                "base" | "exponent" => {
                    let e: Expr = meta.value()?.parse()?;
                    let Some(v) = int_expr(&e) else {
                        cx.error_spanned_by(&e, format!("`{key}` takes an integer literal"));
                        return Ok(());
                    };
                    if key == "base" {
                        if v != 10 && v != 2 {
                            cx.error_spanned_by(&e, "`base` is 10 or 2");
                            return Ok(());
                        }
                        set(cx, &mut f.base, Spanned { value: v as u32, span: e.span() }, &meta.path);
                    } else {
                        if v < i16::MIN as i128 || v > i16::MAX as i128 {
                            cx.error_spanned_by(&e, format!("exponent {v} is out of range: it must fit in an i16"));
                            return Ok(());
                        }
                        set(cx, &mut f.exponent, Spanned { value: v as i64, span: e.span() }, &meta.path);
                    }
                }
                "names" => {
                    let e: Expr = meta.value()?.parse()?;
                    let span = e.span();
                    let Expr::Array(arr) = &e else {
                        cx.error_at(span, "`names` takes a list of strings: names = [\"RUNNABLE\", \"HALTED\"]");
                        return Ok(());
                    };
                    let mut names = Vec::new();
                    for el in &arr.elems {
                        match el {
                            Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => names.push(s.value()),
                            other => {
                                cx.error_spanned_by(other, "`names` takes string literals only");
                                return Ok(());
                            }
                        }
                    }
                    set(cx, &mut f.names, Spanned { value: names, span }, &meta.path);
                }
                "clear" | "read_only" | "hidden" | "flatten" | "skip" => {
                    if meta.input.peek(syn::Token![=]) {
                        let e: Expr = meta.value()?.parse()?;
                        cx.error_spanned_by(&e, format!("`{key}` takes no value: write `#[stat({key})]`"));
                        return Ok(());
                    }
                    let slot = match key.as_str() {
                        "clear" => &mut f.clear,
                        "read_only" => &mut f.read_only,
                        "hidden" => &mut f.hidden,
                        "flatten" => &mut f.flatten,
                        _ => &mut f.skip,
                    };
                    set(cx, slot, span, &meta.path);
                }
                _ => {
                    if meta.input.peek(syn::Token![=]) {
                        let _: Expr = meta.value()?.parse()?;
                    }
                    let keys: Vec<&str> = FIELD_KEYS.split(", ").collect();
                    let message = match statsfs_core::desc::closest(&key, &keys) {
                        Some(c) => format!("unknown stat attribute `{key}`: did you mean `{c}`? (expected one of: {FIELD_KEYS})"),
                        None => format!("unknown stat attribute `{key}`; expected one of: {FIELD_KEYS}"),
                    };
                    cx.error_at(span, message);
                }
            }
            Ok(())
        });
        if let Err(e) = r {
            cx.syn_error(e);
        }
    }
    f
}

/// The field's doc comment as one line: its lines trimmed and joined with spaces, up to
/// the first blank line.
pub fn doc(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("doc")) {
        if let syn::Meta::NameValue(nv) = &attr.meta {
            if let Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) = &nv.value
            {
                let v = s.value();
                let t = v.trim();
                if t.is_empty() {
                    if !lines.is_empty() {
                        break;
                    }
                    continue;
                }
                lines.push(t.to_owned());
            }
        }
    }
    lines.join(" ")
}
