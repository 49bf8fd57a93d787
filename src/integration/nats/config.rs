//! [`NatsConfig`]: where the NATS servers are, how to log in, and how this
//! node names itself and its system.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use super::NatsError;
use super::subject;

/// How a node logs in to NATS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NatsAuth {
    /// No credentials.
    #[default]
    None,
    /// A token (`authorization { token: … }` on the server).
    Token(String),
    /// A user and password.
    UserPassword {
        /// The user.
        user: String,
        /// Its password.
        password: String,
    },
    /// A `.creds` file (JWT and NKey seed, as `nsc` writes them).
    CredentialsFile(PathBuf),
}

/// TLS settings; with them the connection requires TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatsTls {
    /// PEM file of the certificate authorities to trust (the system's
    /// roots otherwise).
    pub root_certificates: Option<PathBuf>,
    /// PEM certificate and key, for servers that verify clients.
    pub client_certificate: Option<(PathBuf, PathBuf)>,
}

/// How hard to try to reconnect after losing the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Attempts before giving up (`None`: forever).
    pub max_attempts: Option<usize>,
    /// The longest wait between attempts (waits grow up to it).
    pub max_delay: Duration,
}

impl Default for ReconnectPolicy {
    /// Forever, waiting at most 2 s between attempts.
    fn default() -> Self {
        Self {
            max_attempts: None,
            max_delay: Duration::from_secs(2),
        }
    }
}

/// How a [`NatsMessageBroker`](super::NatsMessageBroker) connects and
/// names things.
///
/// ```
/// use std::time::Duration;
/// use airssys_rt::integration::nats::{NatsAuth, NatsConfig};
///
/// let config = NatsConfig::new(["nats://127.0.0.1:4222"], "shop", "node-a")
///     .auth(NatsAuth::Token("s3cret".into()))
///     .heartbeat(Duration::from_millis(500), 3)
///     .accept_versions(1..=2);
/// assert_eq!(config.namespace(), "airssys.shop");
/// assert_eq!(config.heartbeat_window(), Duration::from_millis(1500));
/// ```
#[derive(Debug, Clone)]
pub struct NatsConfig {
    pub(crate) servers: Vec<String>,
    pub(crate) system: String,
    pub(crate) node: String,
    pub(crate) auth: NatsAuth,
    pub(crate) tls: Option<NatsTls>,
    pub(crate) reconnect: ReconnectPolicy,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) heartbeat_misses: u32,
    pub(crate) ack_timeout: Duration,
    pub(crate) accepted_versions: RangeInclusive<u32>,
}

impl NatsConfig {
    /// Servers to connect to (`nats://host:port`, tried in turn), the
    /// system's name (its subjects live under `airssys.<system>`) and this
    /// node's name (unique among the system's nodes).
    pub fn new<S: Into<String>>(
        servers: impl IntoIterator<Item = S>,
        system: impl Into<String>,
        node: impl Into<String>,
    ) -> Self {
        Self {
            servers: servers.into_iter().map(Into::into).collect(),
            system: system.into(),
            node: node.into(),
            auth: NatsAuth::None,
            tls: None,
            reconnect: ReconnectPolicy::default(),
            heartbeat_interval: Duration::from_secs(1),
            heartbeat_misses: 3,
            ack_timeout: Duration::from_secs(5),
            accepted_versions: 1..=1,
        }
    }

    /// Sets the credentials.
    pub fn auth(mut self, auth: NatsAuth) -> Self {
        self.auth = auth;
        self
    }

    /// Requires TLS, with these certificates.
    pub fn tls(mut self, tls: NatsTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets the reconnect policy.
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    /// Heartbeats every `interval`; a node is gone after `misses` of them
    /// are missed (at least 1).
    pub fn heartbeat(mut self, interval: Duration, misses: u32) -> Self {
        self.heartbeat_interval = interval;
        self.heartbeat_misses = misses.max(1);
        self
    }

    /// How long a send waits for the receiving node to confirm (5 s by
    /// default).
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// Message versions this node decodes (`1..=1` by default); others are
    /// refused with [`RemoteFailure::UnknownVersion`](crate::broker::RemoteFailure::UnknownVersion).
    pub fn accept_versions(mut self, versions: RangeInclusive<u32>) -> Self {
        self.accepted_versions = versions;
        self
    }

    /// The subject prefix of this system: `airssys.<system>`.
    pub fn namespace(&self) -> String {
        format!("airssys.{}", subject::token(&self.system))
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// How long a node may be silent before it counts as gone.
    pub fn heartbeat_window(&self) -> Duration {
        self.heartbeat_interval * self.heartbeat_misses
    }

    /// Checks what NATS would refuse later, less clearly.
    pub(crate) fn validate(&self) -> Result<(), NatsError> {
        if self.servers.is_empty() {
            return Err(NatsError::Config(
                "no server given; pass at least one nats:// URL".into(),
            ));
        }
        if self.system.is_empty() || self.node.is_empty() {
            return Err(NatsError::Config(
                "the system and node names must not be empty".into(),
            ));
        }
        if self.heartbeat_interval.is_zero() {
            return Err(NatsError::Config(
                "the heartbeat interval must be above zero".into(),
            ));
        }
        Ok(())
    }

    /// The async-nats options these settings make.
    pub(crate) async fn options(&self) -> Result<async_nats::ConnectOptions, NatsError> {
        let mut options = match &self.auth {
            NatsAuth::None => async_nats::ConnectOptions::new(),
            NatsAuth::Token(token) => async_nats::ConnectOptions::with_token(token.clone()),
            NatsAuth::UserPassword { user, password } => {
                async_nats::ConnectOptions::with_user_and_password(user.clone(), password.clone())
            }
            NatsAuth::CredentialsFile(path) => {
                async_nats::ConnectOptions::with_credentials_file(path)
                    .await
                    .map_err(|e| {
                        NatsError::Config(format!(
                            "cannot read credentials {}: {e}",
                            path.display()
                        ))
                    })?
            }
        };
        if let Some(tls) = &self.tls {
            options = options.require_tls(true);
            if let Some(roots) = &tls.root_certificates {
                options = options.add_root_certificates(roots.clone());
            }
            if let Some((cert, key)) = &tls.client_certificate {
                options = options.add_client_certificate(cert.clone(), key.clone());
            }
        }
        let max_delay = self.reconnect.max_delay;
        Ok(options
            .name(format!("airssys-rt {}/{}", self.system, self.node))
            .max_reconnects(self.reconnect.max_attempts)
            .reconnect_delay_callback(move |attempt| {
                let exponent = u32::try_from(attempt.min(16)).unwrap_or(16);
                (Duration::from_millis(10) * 2u32.saturating_pow(exponent)).min(max_delay)
            }))
    }
}
