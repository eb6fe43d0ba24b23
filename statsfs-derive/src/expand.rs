//! IR → tokens: the only file that knows what the generated code looks like.
//!
//! For a struct `S` the derive emits, inside one anonymous `const _: () = { ... };`:
//!
//! * `unsafe impl Stats for S` whose `DESCRIPTORS` is a `const` array built by
//!   `SchemaBuilder`, one step a field: `.push(field::<Cell>(name, offset_of!(S, field)))`
//!   for a stat (then `.sum_of(...)` for a histogram that may keep a sum, and `.also(...)`
//!   for each further aggregation), `.family(...)` for a `Family` or an array
//!   of cells, `.flatten(...)` or `.flatten_prefixed(...)` for a nested struct; and, when
//!   it flattens structs, `COMPONENTS`;
//! * the names of families and prefixed flattens, joined at compile time into `const`
//!   byte strings (`__SF_<FIELD>`), which the steps slice;
//! * one `const` check per family or flattened field that no stat of it takes another's
//!   name, so that a clash is reported on that field;
//! * a `static` schema, whose address is the schema's identity, and an
//!   `inventory::submit!` of it;
//! * `impl S { pub const fn new() -> Self }` (every field's `ZeroCell::ZERO`) and
//!   `ZeroCell for S`, unless a field is skipped or `#[stats(no_new)]`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use statsfs_core::{Aggregation, Unit};
use syn::spanned::Spanned;

use crate::ast::{Cell, Field, Input};
use crate::attr::KindAttr;

fn krate(input: &Input<'_>) -> TokenStream {
    match &input.attrs.krate {
        Some(p) => quote!(#p::__private),
        None => quote!(::statsfs::__private),
    }
}

/// Whether `new()` is generated: no skipped field, no `no_new`, no generics.
fn has_new(input: &Input<'_>) -> bool {
    input.attrs.no_new.is_none()
        && input.generics.params.is_empty()
        && input.fields.iter().all(|f| f.attrs.skip.is_none())
}

/// The full expansion of a valid input.
pub fn expand(input: &Input<'_>) -> TokenStream {
    let sf = krate(input);
    let ident = input.ident;
    let schema_name = input.schema_name();
    let stats: Vec<&Field<'_>> = input
        .fields
        .iter()
        .filter(|f| f.attrs.skip.is_none())
        .collect();
    let counts: Vec<TokenStream> = stats.iter().map(|f| count(f)).collect();
    let total_expr = quote!(0 #(+ #counts)*);
    let total = quote!(__SF_N);
    let steps: Vec<TokenStream> = stats.iter().map(|f| step(ident, f)).collect();
    let names: Vec<TokenStream> = stats.iter().filter_map(|f| joined_names(f)).collect();
    // A clash involving a family or a flattened field is reported on that field.
    let checked: Vec<usize> = (0..stats.len())
        .filter(|&i| stats[i].attrs.flatten.is_some() || stats[i].cell.is_family())
        .collect();
    let ranges = checked.iter().map(|&i| {
        let (before, len) = (&counts[..i], &counts[i]);
        quote!((0 #(+ #before)*, #len))
    });
    let checks: Vec<TokenStream> = checked
        .iter()
        .map(|&i| (i, stats[i]))
        .map(|(i, f)| {
            let before = &counts[..i];
            let len = &counts[i];
            let message = format!(
                "a stat of field `{}` has the name of another stat of `{ident}`: {}",
                f.ident,
                if f.attrs.flatten.is_some() {
                    "a struct flattened twice, or a name it shares with another field; give the flatten a prefix, #[stat(flatten, prefix = \"...\")]"
                } else {
                    "a family member is named <field>_<label value>; rename the field or the other stat"
                }
            );
            quote_spanned!(f.ident.span()=>
                const _: () = __sf::check_names::<#total>(
                    <#ident as __sf::Stats>::DESCRIPTORS, 0 #(+ #before)*, #len, #message);
            )
        })
        .collect();
    // A family's cells are `[C; VALUES.len()]`, as its descriptors say (the `Label`
    // contract, checked for every family field).
    let family_checks = stats.iter().filter_map(|f| match &f.cell {
        Cell::Family { label, cell_ty, .. } => Some(quote_spanned!(f.ty.span()=>
            const _: fn(<#label as __sf::Label>::Array<#cell_ty>)
                -> [#cell_ty; <#label as __sf::Label>::VALUES.len()] = |cells| cells;
        )),
        _ => None,
    });
    let static_ident = format_ident!("__STATSFS_SCHEMA_{}", ident.to_string().to_uppercase());
    // Cells only: no skipped field here, none in what is flattened, no sharded cell.
    let no_skip = input.fields.iter().all(|f| f.attrs.skip.is_none());
    let flattened: Vec<&Field<'_>> = stats
        .iter()
        .copied()
        .filter(|f| f.attrs.flatten.is_some())
        .collect();
    let flattened_cells = flattened.iter().map(|f| {
        let ty = f.ty;
        quote_spanned!(ty.span()=> && <#ty as __sf::Stats>::CELLS_ONLY)
    });
    let components = if flattened.is_empty() {
        TokenStream::new()
    } else {
        let sizes = flattened.iter().map(|f| {
            let ty = f.ty;
            quote!(+ 1 + <#ty as __sf::Stats>::COMPONENTS.len())
        });
        let parts = flattened.iter().map(|f| {
            let (ty, field) = (f.ty, f.ident);
            quote!(.flatten(<#ty as __sf::Stats>::SCHEMA, <#ty as __sf::Stats>::COMPONENTS,
                __sf::offset_of!(#ident, #field)))
        });
        quote! {
            const COMPONENTS: &'static [__sf::Component] =
                &__sf::ComponentsBuilder::<{ 0 #(#sizes)* }>::new() #(#parts)* .build();
        }
    };
    let (new, zero) = if has_new(input) {
        let inits = input.fields.iter().map(|f| {
            let (ty, field) = (f.ty, f.ident);
            let zero = match &f.cell {
                _ if f.attrs.flatten.is_some() => {
                    quote_spanned!(ty.span()=> <#ty as __sf::Stats>::ZERO)
                }
                Cell::Family { label, cell_ty, .. } => quote!(__sf::Family::from_cells(
                    [<#cell_ty as __sf::StatField>::ZERO; <#label as __sf::Label>::VALUES.len()])),
                Cell::Array { cell_ty, len, .. } => {
                    quote!([<#cell_ty as __sf::StatField>::ZERO; #len])
                }
                _ => quote!(<#ty as __sf::StatField>::ZERO),
            };
            quote_spanned!(ty.span()=> #field: #zero)
        });
        (
            quote! {
                impl #ident {
                    /// Every stat at zero; usable in a `static`.
                    #[allow(dead_code)]
                    pub const fn new() -> Self {
                        #ident { #(#inits),* }
                    }
                }
            },
            quote!(const ZERO: Self = #ident::new();),
        )
    } else {
        (TokenStream::new(), TokenStream::new())
    };
    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, clippy::all)]
        const _: () = {
            use #sf as __sf;

            /// How many descriptors.
            const __SF_N: usize = #total_expr;
            #(#names)*

            // SAFETY: every descriptor is built from a field of this struct: its offset by
            // `offset_of!`, its storage, type and size by the field type's `StatField` impl;
            // every component is a flattened field's struct at its `offset_of!`.
            unsafe impl __sf::Stats for #ident {
                const DESCRIPTORS: &'static [__sf::Descriptor] =
                    &__sf::SchemaBuilder::<#total>::new()
                        #(#steps)*
                        .build();
                const SCHEMA: &'static __sf::Schema = &#static_ident;
                const CELLS_ONLY: bool = #no_skip #(#flattened_cells)*
                    && __sf::inline_cells(<Self as __sf::Stats>::DESCRIPTORS);
                #components
                #zero
            }

            #(#family_checks)*
            #(#checks)*
            const _: () = __sf::check_other_names::<#total>(<#ident as __sf::Stats>::DESCRIPTORS,
                &[#(#ranges),*],
                "two stats of this struct have the same name: rename one with #[stat(rename = \"...\")]");

            static #static_ident: __sf::Schema = __sf::Schema::new_static(
                #schema_name,
                ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
                <#ident as __sf::Stats>::DESCRIPTORS,
            ).with_components(<#ident as __sf::Stats>::COMPONENTS);

            __sf::inventory::submit! { __sf::Registration(&#static_ident) }

            #new
        };
    }
}

/// How many descriptors the field makes, as a `const` expression.
fn count(f: &Field<'_>) -> TokenStream {
    let ty = f.ty;
    if f.attrs.flatten.is_some() {
        return quote_spanned!(ty.span()=> <#ty as __sf::Stats>::DESCRIPTORS.len());
    }
    match &f.cell {
        Cell::Family { label, cell_ty, .. } => quote_spanned!(ty.span()=>
            __sf::family_len(<#label as __sf::Label>::VALUES.len(), <#cell_ty as __sf::StatField>::SUM_AT)),
        Cell::Array { cell_ty, len, .. } => quote_spanned!(ty.span()=>
            __sf::family_len(#len, <#cell_ty as __sf::StatField>::SUM_AT)),
        cell => {
            let n = proc_macro2::Literal::usize_unsuffixed(1 + f.attrs.also.len());
            if cell.may_have_sum() {
                quote_spanned!(ty.span()=> (#n + <#ty as __sf::StatField>::SUM_AT.is_some() as usize))
            } else {
                quote!(#n)
            }
        }
    }
}

/// The `const` name of a field's joined names (`what`: `names` or `sums`): the field's
/// own identifier in it, as written, so that no two fields (nor `__SF_N`) share one.
fn names_ident(f: &Field<'_>, what: &str) -> syn::Ident {
    let field = f.ident.to_string();
    format_ident!("__sf_{}_{}", what, field.trim_start_matches("r#"))
}

/// What a family's names are made of: its label's values, or the indices of an array.
fn parts(f: &Field<'_>) -> Option<TokenStream> {
    match &f.cell {
        Cell::Family { label, .. } => {
            Some(quote!(__sf::Parts::Values(<#label as __sf::Label>::VALUES)))
        }
        Cell::Array { len, .. } => Some(quote!(__sf::Parts::Index(#len))),
        _ => None,
    }
}

/// The `const` byte strings of a family's or a prefixed flatten's names.
fn joined_names(f: &Field<'_>) -> Option<TokenStream> {
    let join = |ident: syn::Ident, head: &str, parts: &TokenStream, tail: &str| {
        quote! {
            const #ident: &[u8] = &__sf::join::<{ __sf::joined_len(#head, #parts, #tail) }>(#head, #parts, #tail);
        }
    };
    if let (Some(_), Some(prefix)) = (f.attrs.flatten, &f.attrs.prefix) {
        let ty = f.ty;
        let parts = quote!(__sf::Parts::Names(<#ty as __sf::Stats>::DESCRIPTORS));
        return Some(join(names_ident(f, "names"), &prefix.value, &parts, ""));
    }
    let parts = parts(f)?;
    let head = format!("{}_", f.name());
    let mut out = join(names_ident(f, "names"), &head, &parts, "");
    if f.cell.may_have_sum() {
        out.extend(join(names_ident(f, "sums"), &head, &parts, "_sum"));
    }
    Some(out)
}

/// One step of the builder chain.
fn step(ident: &syn::Ident, f: &Field<'_>) -> TokenStream {
    let field = f.ident;
    let ty = f.ty;
    let offset = quote!(__sf::offset_of!(#ident, #field));
    if f.attrs.flatten.is_some() {
        return match &f.attrs.prefix {
            Some(prefix) => {
                let prefix = &prefix.value;
                let names = names_ident(f, "names");
                quote_spanned!(ty.span()=> .flatten_prefixed(<#ty as __sf::Stats>::DESCRIPTORS, #offset, #prefix, #names))
            }
            None => {
                quote_spanned!(ty.span()=> .flatten(<#ty as __sf::Stats>::DESCRIPTORS, #offset))
            }
        };
    }
    let cell_ty: &syn::Type = match &f.cell {
        Cell::Family { cell_ty, .. } | Cell::Array { cell_ty, .. } => cell_ty,
        _ => ty,
    };
    let name = f.name();
    let d = descriptor(f, cell_ty, &name, &offset);
    let sum_doc = if !f.cell.may_have_sum() {
        String::new()
    } else if f.doc.is_empty() {
        format!("The sum of the samples of {name}")
    } else {
        format!("{} (the sum of the samples)", f.doc)
    };
    if let Some(parts) = parts(f) {
        let label = match (&f.cell, &f.attrs.label) {
            (Cell::Family { label, .. }, _) => quote!(<#label as __sf::Label>::NAME),
            (_, Some(l)) => {
                let l = &l.value;
                quote!(#l)
            }
            _ => quote!(""),
        };
        let head = format!("{name}_");
        let names = names_ident(f, "names");
        let sum_names = if f.cell.may_have_sum() {
            let ident = names_ident(f, "sums");
            quote!(#ident)
        } else {
            quote!(&[])
        };
        return quote_spanned!(ty.span()=> .family(#d, __sf::FamilyOf {
            label: #label,
            head: #head,
            parts: #parts,
            names: #names,
            sum_names: #sum_names,
            sum_at: <#cell_ty as __sf::StatField>::SUM_AT,
            sum_doc: #sum_doc,
            stride: __sf::size_of::<#cell_ty>(),
        }));
    }
    let mut out = quote!(.push(#d));
    if f.cell.may_have_sum() {
        let sum = format!("{name}_sum");
        out.extend(quote_spanned!(ty.span()=>
            .sum_of(<#ty as __sf::StatField>::SUM_AT, #sum, #sum_doc)));
    }
    for ag in &f.attrs.also {
        let also = format!("{name}_{}", ag.value.as_str());
        let variant = aggregation_variant(ag.value);
        out.extend(quote!(.also(#also, __sf::Aggregation::#variant)));
    }
    out
}

/// The descriptor of a stat (or of each member of a family) of cell type `cell_ty`.
fn descriptor(f: &Field<'_>, cell_ty: &syn::Type, name: &str, offset: &TokenStream) -> TokenStream {
    let a = &f.attrs;
    let mut d = match &a.kind {
        Some(k) => {
            let kind = match k.value {
                KindAttr::Cumulative => quote!(Cumulative),
                KindAttr::Instant => quote!(Instant),
                KindAttr::Peak => quote!(Peak),
            };
            quote_spanned!(cell_ty.span()=> __sf::field_of_kind(#name, #offset, <#cell_ty as __sf::StatField>::INFO, __sf::Kind::#kind))
        }
        None if matches!(f.cell.member(), Cell::Other) => {
            quote_spanned!(cell_ty.span()=> __sf::field_unseen(#name, #offset, <#cell_ty as __sf::StatField>::INFO))
        }
        None => {
            quote_spanned!(cell_ty.span()=> __sf::field(#name, #offset, <#cell_ty as __sf::StatField>::INFO))
        }
    };
    if !f.doc.is_empty() {
        let doc = &f.doc;
        d = quote!(#d.with_doc(#doc));
    }
    if a.unit.is_some() || a.base.is_some() || a.exponent.is_some() {
        let base = match a.base.as_ref().map(|b| b.value) {
            Some(2) => quote!(Two),
            _ => quote!(Ten),
        };
        let exponent = proc_macro2::Literal::i16_unsuffixed(
            a.exponent.as_ref().map(|e| e.value as i16).unwrap_or(0),
        );
        let scale = quote!(__sf::Scale { base: __sf::Base::#base, exponent: #exponent });
        d = match &a.unit {
            Some(u) => {
                let unit = unit_variant(u.value);
                quote!(#d.with_unit(__sf::Unit::#unit, #scale))
            }
            None => quote!(#d.with_scale(#scale)),
        };
    }
    if a.names.is_some() && a.aggregate.is_none() {
        // A state does not add up: named stats are not aggregated unless asked.
        d = quote!(#d.with_aggregation(__sf::Aggregation::None));
    }
    if let Some(ag) = &a.aggregate {
        let ag = aggregation_variant(ag.value);
        d = quote!(#d.with_aggregation(__sf::Aggregation::#ag));
    }
    if a.clear.is_some() {
        d = quote!(#d.with_clearable(true));
    }
    if a.read_only.is_some() {
        d = quote!(#d.with_clearable(false));
    }
    if a.hidden.is_some() {
        d = quote!(#d.with_hidden(true));
    }
    if let Some(names) = &a.names {
        let names = &names.value;
        d = quote!(#d.with_names(&[#(#names),*]));
    }
    d
}

/// The variant of the core's `Unit` to name in the expansion.
fn unit_variant(u: Unit) -> TokenStream {
    match u {
        Unit::None => quote!(None),
        Unit::Bytes => quote!(Bytes),
        Unit::Seconds => quote!(Seconds),
        Unit::Cycles => quote!(Cycles),
        Unit::Boolean => quote!(Boolean),
    }
}

/// The variant of the core's `Aggregation` to name in the expansion.
fn aggregation_variant(a: Aggregation) -> TokenStream {
    match a {
        Aggregation::Sum => quote!(Sum),
        Aggregation::Min => quote!(Min),
        Aggregation::Max => quote!(Max),
        Aggregation::Avg => quote!(Avg),
        Aggregation::CountZero => quote!(CountZero),
        Aggregation::None => quote!(None),
    }
}

/// What is emitted beside the errors of an invalid input: an empty `Stats` impl and a
/// `new()` that is never reached, so that code using the struct reports no follow-on
/// errors.
pub fn fallback(input: &Input<'_>) -> TokenStream {
    if !input.generics.params.is_empty() {
        return TokenStream::new();
    }
    let sf = krate(input);
    let ident = input.ident;
    let new = if input.is_named_struct && has_new(input) {
        quote! {
            impl #ident {
                /// Unreachable: the derive failed (see its errors).
                #[allow(dead_code)]
                pub const fn new() -> Self {
                    ::core::panic!("#[derive(Stats)] failed on this struct")
                }
            }
        }
    } else {
        TokenStream::new()
    };
    quote! {
        #[doc(hidden)]
        const _: () = {
            use #sf as __sf;
            // A schema's identity is a static's address, never a promoted constant's.
            static __STATSFS_FALLBACK_SCHEMA: __sf::Schema = __sf::Schema::new_static("", "", &[]);
            // SAFETY: an empty schema reads nothing.
            unsafe impl __sf::Stats for #ident {
                const DESCRIPTORS: &'static [__sf::Descriptor] = &[];
                const SCHEMA: &'static __sf::Schema = &__STATSFS_FALLBACK_SCHEMA;
            }
            #new
        };
    }
}
