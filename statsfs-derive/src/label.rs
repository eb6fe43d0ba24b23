//! `#[derive(Label)]`: a fieldless enum as the label of a `Family`, in the same three
//! steps as the stats derive (parse, check with spans, emit), in one file: it is small.
//!
//! ```text
//! #[derive(Clone, Copy, Label)]
//! #[label(name = "reason")]        // default: the enum's name in snake case
//! enum ExitReason {
//!     PortIn,                      // value "port_in"
//!     #[label(rename = "mmio_r")]  // value "mmio_r"
//!     MmioRead,
//! }
//! ```
//!
//! Emits `unsafe impl Label for ExitReason` (the name, the values in declaration order, the
//! array type `[C; n]`, the index of a variant by a `match`, so explicit discriminants do
//! not matter).

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::{Data, DeriveInput, Fields, LitStr, Path};

use crate::ast::snake_case;
use crate::ctxt::Ctxt;

/// One variant: its identifier and its label value, with where the value was written.
struct Variant<'a> {
    ident: &'a syn::Ident,
    value: String,
    span: Span,
}

pub fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::default();
    let mut name: Option<(String, Span)> = None;
    let mut krate: Option<Path> = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("label")) {
        let r = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let s: LitStr = meta.value()?.parse()?;
                name = Some((s.value(), s.span()));
            } else if meta.path.is_ident("crate") {
                krate = Some(meta.value()?.parse()?);
            } else {
                cx.error_spanned_by(
                    &meta.path,
                    "unknown label attribute; expected `name = \"...\"` or `crate = path`",
                );
            }
            Ok(())
        });
        if let Err(e) = r {
            cx.syn_error(e);
        }
    }
    let ident = &input.ident;
    let (label, label_span) =
        name.unwrap_or_else(|| (snake_case(&ident.to_string()), ident.span()));
    if !statsfs_core::desc::valid_label_name(&label) || label == "le" || label == "retired" {
        cx.error_at(
            label_span,
            format!(
                "label name `{}`: letters, digits and `_`, not starting with a digit, and not `le` or `retired` (the exposition's own labels)",
                label.escape_debug()
            ),
        );
    }
    if !input.generics.params.is_empty() {
        cx.error_spanned_by(
            &input.generics,
            "#[derive(Label)] does not support generic parameters",
        );
    }
    let mut variants = Vec::new();
    match &input.data {
        Data::Enum(e) => {
            if e.variants.is_empty() {
                cx.error_spanned_by(ident, "a label needs at least one variant");
            }
            for v in &e.variants {
                if !matches!(v.fields, Fields::Unit) {
                    cx.error_spanned_by(
                        &v.fields,
                        "a label's variants have no fields: each is one value of the label",
                    );
                }
                let mut value = (snake_case(&v.ident.to_string()), v.ident.span());
                for attr in v.attrs.iter().filter(|a| a.path().is_ident("label")) {
                    let r = attr.parse_nested_meta(|meta| {
                        if meta.path.is_ident("rename") {
                            let s: LitStr = meta.value()?.parse()?;
                            value = (s.value(), s.span());
                        } else {
                            cx.error_spanned_by(
                                &meta.path,
                                "unknown label attribute on a variant; expected `rename = \"...\"`",
                            );
                        }
                        Ok(())
                    });
                    if let Err(e) = r {
                        cx.syn_error(e);
                    }
                }
                variants.push(Variant {
                    ident: &v.ident,
                    value: value.0,
                    span: value.1,
                });
            }
        }
        _ => cx.error_spanned_by(
            ident,
            "#[derive(Label)] goes on a fieldless enum: each variant is one value of the label",
        ),
    }
    for (i, v) in variants.iter().enumerate() {
        // A value ends a file name (`exits_<value>`) and is a label value.
        if v.value.is_empty() || v.value.contains('/') || statsfs_core::desc::has_control(&v.value)
        {
            cx.error_at(
                v.span,
                format!(
                    "label value `{}`: it ends a file name (exits_<value>), so it is not empty and has no `/` or control character",
                    v.value.escape_debug()
                ),
            );
        } else if let Some(first) = variants[..i].iter().find(|o| o.value == v.value) {
            cx.error_at(
                v.span,
                format!(
                    "label value `{}` is also `{}`'s: rename one with #[label(rename = \"...\")]",
                    v.value, first.ident
                ),
            );
        }
    }
    let sf = match &krate {
        Some(p) => quote!(#p::__private),
        None => quote!(::statsfs::__private),
    };
    if cx.has_errors() {
        // The errors, and an empty label, so that the families using it report nothing
        // more.
        let errors = cx.into_compile_errors();
        if !input.generics.params.is_empty() {
            return errors;
        }
        return quote! {
            #errors
            #[doc(hidden)]
            const _: () = {
                use #sf as __sf;
                // SAFETY: an empty label of an array of none; the derive failed.
                unsafe impl __sf::Label for #ident {
                    const NAME: &'static str = "";
                    const VALUES: &'static [&'static str] = &[];
                    type Array<C> = [C; 0];
                    fn index(self) -> usize {
                        0
                    }
                }
            };
        };
    }
    let n = variants.len();
    let values = variants.iter().map(|v| &v.value);
    let arms = variants.iter().enumerate().map(|(i, v)| {
        let vi = v.ident;
        quote_spanned!(vi.span()=> #ident::#vi => #i)
    });
    let span = ident.span();
    quote_spanned! {span=>
        #[doc(hidden)]
        const _: () = {
            use #sf as __sf;
            // SAFETY: `Array<C>` is `[C; n]` with `n` the number of values, and `index`
            // maps each variant to its position among them.
            unsafe impl __sf::Label for #ident {
                const NAME: &'static str = #label;
                const VALUES: &'static [&'static str] = &[#(#values),*];
                type Array<C> = [C; #n];
                #[inline(always)]
                fn index(self) -> usize {
                    match self { #(#arms),* }
                }
            }
        };
    }
}
