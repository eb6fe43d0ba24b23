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

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Derives `statsfs::Stats`; see the documentation of `statsfs::Stats`.
#[proc_macro_derive(Stats, attributes(stats, stat))]
pub fn derive_stats(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    derive(&input).into()
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
