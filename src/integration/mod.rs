//! Integrations with what lies outside the runtime: the OS layer
//! ([`osl`], feature `osl`, on by default).

#[cfg(feature = "osl")]
pub mod osl;
