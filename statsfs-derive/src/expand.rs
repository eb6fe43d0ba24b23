//! IR → tokens: the only file that knows what the generated code looks like.
//!
//! For a struct `S` the derive emits, inside one anonymous `const _: () = { ... };`:
//!
//! * `unsafe impl Stats for S` whose `DESCRIPTORS` is a `const` array built by
//!   `SchemaBuilder` (one `.push(field::<Cell>(name, offset_of!(S, field)))` per stat,
//!   one `.flatten(<Inner as Stats>::DESCRIPTORS, offset_of!(S, field))` per flattened
//!   field), checked at compile time by `build()`;
//! * a `static` schema, whose address is the schema's identity;
//! * an `inventory::submit!` of that schema.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use statsfs_core::{Aggregation, Unit};
use syn::spanned::Spanned;

use crate::ast::{Field, Input};
use crate::attr::KindAttr;

fn krate(input: &Input<'_>) -> TokenStream {
    match &input.attrs.krate {
        Some(p) => quote!(#p::__private),
        None => quote!(::statsfs::__private),
    }
}

/// The full expansion of a valid input.
pub fn expand(input: &Input<'_>) -> TokenStream {
    let sf = krate(input);
    let ident = input.ident;
    let schema_name = input.schema_name();
    let own = proc_macro2::Literal::usize_unsuffixed(
        input
            .fields
            .iter()
            .filter(|f| f.attrs.flatten.is_none() && f.attrs.skip.is_none())
            .count(),
    );
    let nested: Vec<TokenStream> = input
        .fields
        .iter()
        .filter(|f| f.attrs.flatten.is_some())
        .map(|f| {
            let ty = f.ty;
            quote_spanned!(ty.span()=> + <#ty as __sf::Stats>::DESCRIPTORS.len())
        })
        .collect();
    let steps: Vec<TokenStream> = input
        .fields
        .iter()
        .filter(|f| f.attrs.skip.is_none())
        .map(|f| step(ident, f))
        .collect();
    let static_ident = format_ident!("__STATSFS_SCHEMA_{}", ident.to_string().to_uppercase());
    // Cells only: no skipped field here, none in what is flattened, no sharded cell.
    let no_skip = input.fields.iter().all(|f| f.attrs.skip.is_none());
    let flattened_cells: Vec<TokenStream> = input
        .fields
        .iter()
        .filter(|f| f.attrs.flatten.is_some())
        .map(|f| {
            let ty = f.ty;
            quote_spanned!(ty.span()=> && <#ty as __sf::Stats>::CELLS_ONLY)
        })
        .collect();
    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, clippy::all)]
        const _: () = {
            use #sf as __sf;

            // SAFETY: every descriptor is built from a field of this struct: its offset by
            // `offset_of!`, its storage, type and size by the field type's `StatField` impl.
            unsafe impl __sf::Stats for #ident {
                const DESCRIPTORS: &'static [__sf::Descriptor] =
                    &__sf::SchemaBuilder::<{ #own #(#nested)* }>::new()
                        #(#steps)*
                        .build();
                const SCHEMA: &'static __sf::Schema = &#static_ident;
                const CELLS_ONLY: bool = #no_skip #(#flattened_cells)*
                    && __sf::inline_cells(<Self as __sf::Stats>::DESCRIPTORS);
            }

            static #static_ident: __sf::Schema = __sf::Schema::new_static(
                #schema_name,
                ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
                <#ident as __sf::Stats>::DESCRIPTORS,
            );

            __sf::inventory::submit! { __sf::Registration(&#static_ident) }
        };
    }
}

/// One `.push(...)` or `.flatten(...)` of the builder chain.
fn step(ident: &syn::Ident, f: &Field<'_>) -> TokenStream {
    let field = f.ident;
    let ty = f.ty;
    let offset = quote!(__sf::offset_of!(#ident, #field));
    if f.attrs.flatten.is_some() {
        return quote_spanned!(ty.span()=> .flatten(<#ty as __sf::Stats>::DESCRIPTORS, #offset));
    }
    let name = f.name();
    let a = &f.attrs;
    let mut d = match &a.kind {
        Some(k) => {
            let kind = match k.value {
                KindAttr::Cumulative => quote!(Cumulative),
                KindAttr::Instant => quote!(Instant),
                KindAttr::Peak => quote!(Peak),
            };
            quote_spanned!(ty.span()=> __sf::field_of_kind::<#ty>(#name, #offset, __sf::Kind::#kind))
        }
        None => quote_spanned!(ty.span()=> __sf::field::<#ty>(#name, #offset)),
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
    quote!(.push(#d))
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

/// What is emitted beside the errors of an invalid input: an empty `Stats` impl, so that
/// code using the struct reports no follow-on errors.
pub fn fallback(input: &Input<'_>) -> TokenStream {
    if !input.generics.params.is_empty() {
        return TokenStream::new();
    }
    let sf = krate(input);
    let ident = input.ident;
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
        };
    }
}
