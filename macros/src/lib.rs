//! Derive macros for [airssys-rt](https://docs.rs/airssys-rt), re-exported
//! by it (feature `macros`, on by default): use them as
//! `airssys_rt::message::Message` or from its prelude.
//!
//! `#[derive(Message)]` implements `airssys_rt::message::Message`:
//!
//! | attribute | effect | default |
//! |---|---|---|
//! | `#[message(name = "billing.invoice")]` | `MESSAGE_TYPE` | the type's path-qualified name (`my_crate::billing::Invoice`) |
//! | `#[message(priority = "high")]` | a fixed `priority()`: `low`, `normal`, `high` or `critical` | `Normal` |
//! | `#[message(version = 2)]` | `version()` | 1 |
//! | `#[message(routing_key = customer)]` | `routing_key()` returns that field (anything `AsRef<str>`; a tuple struct's field by index: `routing_key = 0`); structs only | `None` |

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Data, DeriveInput, Error, Expr, ExprLit, Lit, Member, Meta, Token, parse_macro_input};

/// Implements `airssys_rt::message::Message`; see the crate docs for the
/// `#[message(...)]` attributes.
#[proc_macro_derive(Message, attributes(message))]
pub fn derive_message(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

/// What the `#[message(...)]` attributes asked for.
#[derive(Default)]
struct Options {
    name: Option<String>,
    priority: Option<syn::Ident>,
    version: Option<u32>,
    routing_key: Option<Member>,
}

fn expand(input: &DeriveInput) -> syn::Result<Tokens> {
    let options = options(input)?;
    let ident = &input.ident;
    let (impl_generics, type_generics, where_clause) = input.generics.split_for_impl();
    let name = match &options.name {
        Some(name) => quote!(#name),
        None => quote!(::core::concat!(
            ::core::module_path!(),
            "::",
            ::core::stringify!(#ident)
        )),
    };
    let priority = options.priority.as_ref().map(|level| {
        quote! {
            fn priority(&self) -> ::airssys_rt::message::MessagePriority {
                ::airssys_rt::message::MessagePriority::#level
            }
        }
    });
    let version = options.version.map(|version| {
        quote! {
            fn version(&self) -> u32 { #version }
        }
    });
    let routing_key = match &options.routing_key {
        None => None,
        Some(field) => {
            let Data::Struct(data) = &input.data else {
                return Err(Error::new_spanned(
                    field,
                    "routing_key names a field, so it works on structs only; implement Message by hand for an enum",
                ));
            };
            let exists = data
                .fields
                .iter()
                .enumerate()
                .any(|(at, f)| match (field, &f.ident) {
                    (Member::Named(wanted), Some(name)) => wanted == name,
                    (Member::Unnamed(index), None) => index.index as usize == at,
                    _ => false,
                });
            if !exists {
                return Err(Error::new_spanned(field, "routing_key: no such field"));
            }
            Some(quote! {
                fn routing_key(&self) -> ::core::option::Option<&str> {
                    ::core::option::Option::Some(::core::convert::AsRef::<str>::as_ref(&self.#field))
                }
            })
        }
    };
    Ok(quote! {
        impl #impl_generics ::airssys_rt::message::Message for #ident #type_generics #where_clause {
            const MESSAGE_TYPE: &'static str = #name;
            #priority
            #version
            #routing_key
        }
    })
}

fn options(input: &DeriveInput) -> syn::Result<Options> {
    let mut options = Options::default();
    for attribute in input.attrs.iter().filter(|a| a.path().is_ident("message")) {
        let Meta::List(list) = &attribute.meta else {
            return Err(Error::new_spanned(
                attribute,
                "expected #[message(key = value, ...)]",
            ));
        };
        let pairs = Punctuated::<syn::MetaNameValue, Token![,]>::parse_terminated
            .parse2(list.tokens.clone())?;
        for pair in pairs {
            let key = pair
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            match key.as_str() {
                "name" => options.name = Some(string(&pair.value)?),
                "priority" => options.priority = Some(priority(&pair.value)?),
                "version" => options.version = Some(version(&pair.value)?),
                "routing_key" => options.routing_key = Some(member(&pair.value)?),
                _ => {
                    return Err(Error::new_spanned(
                        &pair.path,
                        "unknown message attribute; expected name, priority, version or routing_key",
                    ));
                }
            }
        }
    }
    Ok(options)
}

fn string(value: &Expr) -> syn::Result<String> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) if !text.value().is_empty() => Ok(text.value()),
        _ => Err(Error::new_spanned(
            value,
            "name must be a non-empty string literal",
        )),
    }
}

fn priority(value: &Expr) -> syn::Result<syn::Ident> {
    let text = match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => text.value(),
        Expr::Path(path) => path
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default(),
        _ => String::new(),
    };
    let level = match text.to_ascii_lowercase().as_str() {
        "low" => "Low",
        "normal" => "Normal",
        "high" => "High",
        "critical" => "Critical",
        _ => {
            return Err(Error::new_spanned(
                value,
                "priority must be one of \"low\", \"normal\", \"high\", \"critical\"",
            ));
        }
    };
    Ok(syn::Ident::new(level, Span::call_site()))
}

fn version(value: &Expr) -> syn::Result<u32> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(number),
            ..
        }) => number.base10_parse(),
        _ => Err(Error::new_spanned(value, "version must be an integer")),
    }
}

fn member(value: &Expr) -> syn::Result<Member> {
    match value {
        Expr::Path(path) => match path.path.get_ident() {
            Some(ident) => Ok(Member::Named(ident.clone())),
            None => Err(Error::new_spanned(value, "routing_key must name a field")),
        },
        Expr::Lit(ExprLit {
            lit: Lit::Int(index),
            ..
        }) => Ok(Member::Unnamed(syn::Index {
            index: index.base10_parse()?,
            span: index.span(),
        })),
        _ => Err(Error::new_spanned(
            value,
            "routing_key must name a field (or a tuple index)",
        )),
    }
}
