//! `#[derive(Stats)]`: static value descriptors from an annotated struct.
//!
//! Use it through the `statsfs` facade (`#[derive(statsfs::Stats)]`); its whole
//! documentation, with every attribute, is on `statsfs::Stats`.
//!
//! The derive works in three steps, one file each:
//!
//! 1. `ast.rs` + `attr.rs`: parse syn's input into an IR of the struct and its stats;
//! 2. `check.rs`: every rule that can be checked at compile time, errors collected in
//!    `ctxt.rs` with their spans, all reported at once;
//! 3. `expand.rs`: IR → tokens (on error: the errors plus an empty impl, so that no
//!    follow-on errors cascade).

extern crate proc_macro;

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;
mod global;
mod label;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Derives `statsfs::Stats`; see the documentation of `statsfs::Stats`.
#[proc_macro_derive(Stats, attributes(stats, stat))]
pub fn derive_stats(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    derive(&input).into()
}

/// Derives `statsfs::Label` for a fieldless enum; see the documentation of
/// `statsfs::Label`.
#[proc_macro_derive(Label, attributes(label))]
pub fn derive_label(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    label::derive(&input).into()
}

/// Registers a `static` stats struct as process-global statistics; see the
/// documentation of `statsfs::global`.
#[proc_macro_attribute]
pub fn global(args: TokenStream, item: TokenStream) -> TokenStream {
    global::expand(args.into(), item.into()).into()
}

fn derive(input: &DeriveInput) -> proc_macro2::TokenStream {
    let cx = ctxt::Ctxt::default();
    let ir = ast::Input::from_syn(&cx, input);
    if ir.is_named_struct {
        check::check(&cx, &ir);
    }
    if cx.has_errors() {
        let fallback = expand::fallback(&ir);
        let errors = cx.into_compile_errors();
        return quote::quote!(#errors #fallback);
    }
    expand::expand(&ir)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The code generated for a KVM-like `VcpuStat` is checked in, formatted, so that
    /// what `cargo expand` shows stays short and legible; `STATSFS_BLESS=1` rewrites it.
    #[test]
    fn expansion_snapshot() {
        let input: syn::DeriveInput =
            syn::parse_str(include_str!("../tests/expand/vcpu_stat.input.rs")).unwrap();
        let tokens = super::derive(&input);
        let file: syn::File = syn::parse2(tokens).expect("the expansion parses as Rust items");
        let expanded = prettyplease::unparse(&file);
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expand/vcpu_stat.expanded.rs");
        if std::env::var_os("STATSFS_BLESS").is_some() {
            std::fs::write(&path, &expanded).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            want == expanded,
            "the expansion changed; review it and rerun with STATSFS_BLESS=1:\n{expanded}"
        );
    }

    #[test]
    fn errors_come_all_at_once_with_a_fallback_impl() {
        let input: syn::DeriveInput = syn::parse_quote! {
            struct Bad {
                #[stat(unit = seconds, exponent = 3)]
                a: Counter,
                #[stat(nope)]
                b: Counter,
                c: u64,
            }
        };
        let out = super::derive(&input).to_string();
        assert_eq!(out.matches("compile_error").count(), 3, "{out}");
        assert!(out.contains("unsafe impl __sf :: Stats for Bad"), "{out}");
    }
}
