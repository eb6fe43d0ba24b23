//! The IR: a stats struct and its fields, parsed from syn's input, with every attribute
//! read and every field type classified. Nothing is judged here (see `check.rs`).

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, GenericArgument, PathArguments, Type};

use crate::attr;
use crate::ctxt::Ctxt;

/// The struct.
pub struct Input<'a> {
    pub ident: &'a syn::Ident,
    pub generics: &'a syn::Generics,
    pub attrs: attr::Container,
    /// Named fields; empty when the input is no struct with named fields (an error has
    /// been recorded then).
    pub fields: Vec<Field<'a>>,
    /// Whether the input is a struct with named fields at all.
    pub is_named_struct: bool,
}

/// One field.
pub struct Field<'a> {
    pub ident: &'a syn::Ident,
    pub ty: &'a Type,
    pub attrs: attr::Field,
    pub doc: String,
    pub cell: Cell,
}

impl Field<'_> {
    /// The stat's name: `rename`, else the field's name.
    pub fn name(&self) -> String {
        match &self.attrs.rename {
            Some(r) => r.value.clone(),
            None => self.ident.to_string().trim_start_matches("r#").to_owned(),
        }
    }

    /// Where the name was written.
    pub fn name_span(&self) -> Span {
        self.attrs
            .rename
            .as_ref()
            .map(|r| r.span)
            .unwrap_or_else(|| self.ident.span())
    }
}

/// An integer or bool as the derive can see it in a type.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Prim {
    Int { signed: bool },
    Bool,
}

/// What the field's type is, as far as the derive can tell from its syntax. Types it
/// cannot tell are [`Cell::Other`]: the `StatField` trait bound decides about them.
#[derive(Clone)]
pub enum Cell {
    Counter,
    Gauge(Prim),
    Peak(Prim),
    Flag,
    Sharded,
    /// Literal generic arguments, when they are literals.
    LinearHistogram {
        buckets: Option<u64>,
        width: Option<u64>,
        buckets_span: Span,
        width_span: Span,
    },
    LogHistogram {
        buckets: Option<u64>,
        buckets_span: Span,
    },
    /// A std atomic (`AtomicU64`, `AtomicBool`, ...).
    Atomic(Prim),
    /// `AtomicUsize` / `AtomicIsize`: rejected.
    PointerSized,
    /// A plain integer, bool or float: rejected.
    Plain(String),
    /// `Family<L, C>`: one `C` per value of the label enum `L`.
    Family {
        label: Box<Type>,
        cell: Box<Cell>,
        cell_ty: Box<Type>,
    },
    /// `[C; N]`: one `C` per index (with `#[stat(label = "...")]`).
    Array {
        cell: Box<Cell>,
        cell_ty: Box<Type>,
        len: Box<syn::Expr>,
    },
    Other,
}

impl Cell {
    /// The cell each member of a family or array is; the cell itself otherwise.
    pub fn member(&self) -> &Cell {
        match self {
            Cell::Family { cell, .. } | Cell::Array { cell, .. } => cell.member(),
            c => c,
        }
    }

    /// Whether this is a family or an array of cells.
    pub fn is_family(&self) -> bool {
        matches!(self, Cell::Family { .. } | Cell::Array { .. })
    }

    /// Whether a value of this cell may keep a histogram sum: a histogram cell, whose
    /// type says (`WithSum`). A type the derive cannot see into (an alias) is checked to
    /// keep none (`field_unseen`).
    pub fn may_have_sum(&self) -> bool {
        self.is_histogram()
    }

    /// The kind this cell fixes, if it fixes one.
    pub fn fixed_kind(&self) -> Option<&'static str> {
        match self.member() {
            Cell::Counter | Cell::Sharded => Some("cumulative"),
            Cell::Gauge(_) | Cell::Flag => Some("instant"),
            Cell::Peak(_) => Some("peak"),
            Cell::LinearHistogram { .. } => Some("linear_histogram"),
            Cell::LogHistogram { .. } => Some("log_histogram"),
            _ => None,
        }
    }

    /// The value type, when visible.
    pub fn prim(&self) -> Option<Prim> {
        match self.member() {
            Cell::Counter | Cell::Sharded => Some(Prim::Int { signed: false }),
            Cell::Gauge(p) | Cell::Peak(p) | Cell::Atomic(p) => Some(*p),
            Cell::Flag => Some(Prim::Bool),
            Cell::LinearHistogram { .. } | Cell::LogHistogram { .. } => {
                Some(Prim::Int { signed: false })
            }
            _ => None,
        }
    }

    pub fn is_histogram(&self) -> bool {
        matches!(
            self.member(),
            Cell::LinearHistogram { .. } | Cell::LogHistogram { .. }
        )
    }

    /// The kind the field has without a `kind` attribute, when visible.
    pub fn default_kind(&self) -> Option<&'static str> {
        self.fixed_kind().or(match self.member() {
            Cell::Atomic(Prim::Bool) => Some("instant"),
            Cell::Atomic(_) => Some("cumulative"),
            _ => None,
        })
    }
}

fn prim_named(name: &str) -> Option<Prim> {
    match name {
        "u8" | "u16" | "u32" | "u64" => Some(Prim::Int { signed: false }),
        "i8" | "i16" | "i32" | "i64" => Some(Prim::Int { signed: true }),
        "bool" => Some(Prim::Bool),
        _ => None,
    }
}

fn generic_args(seg: &syn::PathSegment) -> Vec<&GenericArgument> {
    match &seg.arguments {
        PathArguments::AngleBracketed(a) => a.args.iter().collect(),
        _ => Vec::new(),
    }
}

fn lit_arg(arg: Option<&&GenericArgument>) -> (Option<u64>, Span) {
    match arg {
        Some(a) => {
            let span = a.span();
            let v = match a {
                GenericArgument::Const(syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Int(i),
                    ..
                })) => i.base10_parse().ok(),
                GenericArgument::Const(syn::Expr::Block(b)) => match b.block.stmts.as_slice() {
                    [syn::Stmt::Expr(
                        syn::Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Int(i),
                            ..
                        }),
                        None,
                    )] => i.base10_parse().ok(),
                    _ => None,
                },
                _ => None,
            };
            (v, span)
        }
        None => (None, Span::call_site()),
    }
}

fn type_prim(arg: Option<&&GenericArgument>) -> Prim {
    match arg {
        Some(GenericArgument::Type(Type::Path(p))) => p
            .path
            .get_ident()
            .and_then(|i| prim_named(&i.to_string()))
            .unwrap_or(Prim::Int { signed: false }),
        _ => Prim::Int { signed: false },
    }
}

/// Classifies a field type by its last path segment.
pub fn classify(ty: &Type) -> Cell {
    if let Type::Array(a) = ty {
        return Cell::Array {
            cell: Box::new(classify(&a.elem)),
            cell_ty: a.elem.clone(),
            len: Box::new(a.len.clone()),
        };
    }
    if let Type::Paren(p) = ty {
        return classify(&p.elem);
    }
    let Type::Path(tp) = ty else {
        return Cell::Other;
    };
    if tp.qself.is_some() {
        return Cell::Other;
    }
    let Some(seg) = tp.path.segments.last() else {
        return Cell::Other;
    };
    let name = seg.ident.to_string();
    let args = generic_args(seg);
    match name.as_str() {
        "Family" => match args.as_slice() {
            [GenericArgument::Type(label), GenericArgument::Type(cell)] => Cell::Family {
                label: Box::new(label.clone()),
                cell: Box::new(classify(cell)),
                cell_ty: Box::new(cell.clone()),
            },
            _ => Cell::Other,
        },
        "Counter" => Cell::Counter,
        "Gauge" => Cell::Gauge(type_prim(args.first())),
        "Peak" => Cell::Peak(type_prim(args.first())),
        "Flag" => Cell::Flag,
        "ShardedCounter" => Cell::Sharded,
        "LinearHistogram" => {
            let (buckets, buckets_span) = lit_arg(args.first());
            let (width, width_span) = lit_arg(args.get(1));
            Cell::LinearHistogram {
                buckets,
                width,
                buckets_span,
                width_span,
            }
        }
        "LogHistogram" => {
            let (buckets, buckets_span) = lit_arg(args.first());
            Cell::LogHistogram {
                buckets,
                buckets_span,
            }
        }
        "AtomicBool" => Cell::Atomic(Prim::Bool),
        "AtomicU8" | "AtomicU16" | "AtomicU32" | "AtomicU64" => {
            Cell::Atomic(Prim::Int { signed: false })
        }
        "AtomicI8" | "AtomicI16" | "AtomicI32" | "AtomicI64" => {
            Cell::Atomic(Prim::Int { signed: true })
        }
        "AtomicUsize" | "AtomicIsize" => Cell::PointerSized,
        n if tp.path.segments.len() == 1
            && (prim_named(n).is_some()
                || matches!(n, "usize" | "isize" | "f32" | "f64" | "u128" | "i128")) =>
        {
            Cell::Plain(name)
        }
        _ => Cell::Other,
    }
}

impl<'a> Input<'a> {
    pub fn from_syn(cx: &Ctxt, input: &'a DeriveInput) -> Input<'a> {
        let attrs = attr::container(cx, &input.attrs);
        let (fields, is_named_struct) = match &input.data {
            Data::Struct(s) => {
                match &s.fields {
                    Fields::Named(named) => (
                        named.named.iter().map(|f| Field::from_syn(cx, f)).collect(),
                        true,
                    ),
                    Fields::Unnamed(u) => {
                        cx.error_spanned_by(u, "#[derive(Stats)] needs named fields: the field names are the stat names");
                        (Vec::new(), false)
                    }
                    Fields::Unit => {
                        cx.error_spanned_by(&input.ident, "#[derive(Stats)] needs a struct with named fields; this unit struct has no stats");
                        (Vec::new(), false)
                    }
                }
            }
            Data::Enum(e) => {
                cx.error_spanned_by(
                    e.enum_token,
                    "#[derive(Stats)] works on structs with named fields, not enums",
                );
                (Vec::new(), false)
            }
            Data::Union(u) => {
                cx.error_spanned_by(
                    u.union_token,
                    "#[derive(Stats)] works on structs with named fields, not unions",
                );
                (Vec::new(), false)
            }
        };
        Input {
            ident: &input.ident,
            generics: &input.generics,
            attrs,
            fields,
            is_named_struct,
        }
    }

    /// The schema's name: `#[stats(name)]`, else the struct's name in snake case.
    pub fn schema_name(&self) -> String {
        match &self.attrs.name {
            Some(n) => n.value.clone(),
            None => snake_case(&self.ident.to_string()),
        }
    }
}

impl<'a> Field<'a> {
    fn from_syn(cx: &Ctxt, f: &'a syn::Field) -> Field<'a> {
        Field {
            ident: f.ident.as_ref().expect("named field"),
            ty: &f.ty,
            attrs: attr::field(cx, &f.attrs),
            doc: attr::doc(&f.attrs),
            cell: classify(&f.ty),
        }
    }
}

/// `VcpuStat` → `vcpu_stat`, `KVMStats` → `kvm_stats`.
pub fn snake_case(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if i > 0 && (prev_lower || (next_lower && chars[i - 1].is_uppercase())) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_names() {
        assert_eq!(snake_case("VcpuStat"), "vcpu_stat");
        assert_eq!(snake_case("KVMStats"), "kvm_stats");
        assert_eq!(snake_case("Vm"), "vm");
        assert_eq!(snake_case("IoStat2"), "io_stat2");
    }

    #[test]
    fn classifies_cells() {
        let t: Type = syn::parse_quote!(statsfs::cell::LinearHistogram<8, 100>);
        assert!(matches!(
            classify(&t),
            Cell::LinearHistogram {
                buckets: Some(8),
                width: Some(100),
                ..
            }
        ));
        let t: Type = syn::parse_quote!(Gauge<i32>);
        assert!(matches!(
            classify(&t),
            Cell::Gauge(Prim::Int { signed: true })
        ));
        let t: Type = syn::parse_quote!(u64);
        assert!(matches!(classify(&t), Cell::Plain(_)));
        let t: Type = syn::parse_quote!(MyAlias);
        assert!(matches!(classify(&t), Cell::Other));
    }
}
