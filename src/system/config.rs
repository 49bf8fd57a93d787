//! [`SystemConfig`].

use std::time::Duration;

use crate::mailbox::MailboxConfig;

/// Settings of an [`ActorSystem`](super::ActorSystem). `Default` gives sane
/// values; change only what you need.
///
/// ```
/// use std::time::Duration;
/// use airssys_rt::system::SystemConfig;
/// let cfg = SystemConfig::named("payments").with_shutdown_timeout(Duration::from_secs(2));
/// assert_eq!(cfg.name, "payments");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemConfig {
    /// Name used in logs and errors.
    pub name: String,
    /// Mailbox of actors spawned without an explicit one (unbounded FIFO).
    pub default_mailbox: MailboxConfig,
    /// How many recent dead letters are kept for inspection (counts are always exact).
    pub dead_letters_kept: usize,
    /// Grace period of [`ActorSystem::shutdown_default`](super::ActorSystem::shutdown_default)
    /// before remaining actors are killed.
    pub shutdown_timeout: Duration,
}

impl Default for SystemConfig {
    fn default() -> Self {
        Self {
            name: "airssys".to_owned(),
            default_mailbox: MailboxConfig::unbounded(),
            dead_letters_kept: 1024,
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

impl SystemConfig {
    /// Default settings with another name.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Sets the default mailbox.
    pub fn with_default_mailbox(mut self, mailbox: MailboxConfig) -> Self {
        self.default_mailbox = mailbox;
        self
    }

    /// Sets how many recent dead letters are kept.
    pub fn with_dead_letters_kept(mut self, kept: usize) -> Self {
        self.dead_letters_kept = kept;
        self
    }

    /// Sets the default shutdown grace period.
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_sane() {
        let cfg = SystemConfig::default();
        assert_eq!(cfg.default_mailbox, MailboxConfig::unbounded());
        assert!(cfg.dead_letters_kept > 0);
        assert!(cfg.shutdown_timeout > Duration::ZERO);
        let cfg = cfg
            .with_dead_letters_kept(3)
            .with_default_mailbox(MailboxConfig::default());
        assert_eq!(cfg.dead_letters_kept, 3);
    }
}
