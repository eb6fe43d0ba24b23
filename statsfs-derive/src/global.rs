//! `#[global]` on a `static`: the static, plus its registration with the core's
//! link-time registry of process-global statistics.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

/// Expands `#[global(name = "...", crate = path)] static X: T = ...;`.
pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let item: syn::ItemStatic = match syn::parse2(item) {
        Ok(i) => i,
        Err(e) => {
            let msg =
                format!("#[statsfs::global] goes on a `static` of a #[derive(Stats)] struct: {e}");
            return syn::Error::new(e.span(), msg).to_compile_error();
        }
    };
    let mut name: Option<syn::LitStr> = None;
    let mut krate: Option<syn::Path> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            name = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident("crate") {
            krate = Some(meta.value()?.parse()?);
            Ok(())
        } else {
            Err(meta.error(
                "unknown argument; #[statsfs::global] takes `name = \"...\"` and `crate = path`",
            ))
        }
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, args) {
        let e = e.to_compile_error();
        return quote!(#e #item);
    }
    let mut errors = TokenStream::new();
    if let syn::StaticMutability::Mut(m) = &item.mutability {
        errors.extend(quote_spanned! {m.span()=>
            compile_error!("a global's statistics are read while they are written: make the static immutable (its cells are atomics)");
        });
    }
    let ident = &item.ident;
    let name =
        name.unwrap_or_else(|| syn::LitStr::new(&ident.to_string().to_lowercase(), ident.span()));
    if !statsfs_core::desc::valid_name(&name.value()) {
        errors.extend(quote_spanned! {name.span()=>
            compile_error!("a global's name is a directory name: not empty, not `.` or `..`, no `/` or control character");
        });
    }
    let sf = krate.unwrap_or_else(|| syn::parse_quote!(::statsfs));
    quote! {
        #item
        #errors
        #[doc(hidden)]
        const _: () = {
            use #sf::__private as __sf;
            fn __statsfs_global_group() -> __sf::ValueGroup {
                __sf::ValueGroup::of_static(&#ident)
            }
            __sf::inventory::submit! {
                __sf::Global::new(#name, __statsfs_global_group)
            }
        };
    }
}
