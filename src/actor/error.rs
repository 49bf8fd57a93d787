//! [`ActorError`]: a ready error type for actors whose hooks meet errors of
//! many kinds, so that `?` works on all of them.

use std::error::Error;
use std::fmt;

/// Any error, boxed: the `type Error` for an actor whose hooks use `?` on
/// spawns, registry lookups, asks, I/O and their own errors alike.
///
/// Every `std::error::Error + Send + Sync` converts into it with `?`; a
/// plain message is made with [`ActorError::msg`]. Like `anyhow::Error`
/// (which works as an actor's error type too), it does not itself
/// implement `std::error::Error` — that is what lets every error convert
/// into it — so the [`Actor`](super::Actor) trait asks only for `Debug +
/// Display`. Its text is the error's, followed by its sources.
///
/// ```
/// use airssys_rt::prelude::*;
///
/// struct Front;
/// impl Actor for Front {
///     type Message = u64;
///     type Error = ActorError;
///
///     async fn pre_start(&mut self, ctx: &mut ActorContext<u64>) -> Result<(), ActorError> {
///         // A spawn, a parse and a send, each with its own error type.
///         let backend = ctx.spawn_child().name("backend").spawn(Front)?;
///         let limit: u64 = "64".parse()?;
///         backend.try_tell(limit)?;
///         Ok(())
///     }
///
///     async fn handle_message(&mut self, n: u64, _: &mut ActorContext<u64>) -> Result<(), ActorError> {
///         if n == 0 {
///             return Err(ActorError::msg("zero is not a limit"));
///         }
///         Ok(())
///     }
/// }
/// ```
pub struct ActorError(Box<dyn Error + Send + Sync + 'static>);

impl ActorError {
    /// An error that is only a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self(message.to_string().into())
    }

    /// The error, if it is an `E`.
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref()
    }

    /// The boxed error, e.g. to return it from a function that returns
    /// `Box<dyn Error + Send + Sync>`.
    pub fn into_inner(self) -> Box<dyn Error + Send + Sync + 'static> {
        self.0
    }
}

impl<E: Error + Send + Sync + 'static> From<E> for ActorError {
    fn from(error: E) -> Self {
        Self(Box::new(error))
    }
}

impl fmt::Debug for ActorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for ActorError {
    /// The error's text, then each source's after `: `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl AsRef<dyn Error + Send + Sync + 'static> for ActorError {
    fn as_ref(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::num::ParseIntError);

    #[test]
    fn converts_any_error_and_shows_its_sources() {
        let parse = "x".parse::<u8>().unwrap_err();
        let error = ActorError::from(Outer(parse));
        assert_eq!(error.to_string(), "outer: invalid digit found in string");
        assert!(error.downcast_ref::<Outer>().is_some());
        assert_eq!(ActorError::msg("plain").to_string(), "plain");
    }

    #[test]
    fn question_mark_converts() {
        fn parse(text: &str) -> Result<u8, ActorError> {
            Ok(text.parse::<u8>()?)
        }
        assert_eq!(parse("7").unwrap(), 7);
        assert!(
            parse("no")
                .unwrap_err()
                .downcast_ref::<std::num::ParseIntError>()
                .is_some()
        );
    }
}
