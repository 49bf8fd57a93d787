//! [`CircuitBreaker`]: stops calling something that keeps failing, and tries
//! it again after a pause.
//!
//! Closed (calls pass) → Open after `failure_threshold` consecutive failures
//! (calls are refused at once) → HalfOpen once `reset_timeout` has passed
//! (calls pass as trials) → Closed after `success_threshold` consecutive
//! successful trials; a failed trial opens the circuit again.
//!
//! Lock-free: the whole state is one atomic word (state, failure and
//! success counts) plus the time the circuit last opened; every transition
//! is a compare-and-swap, so concurrent callers never block each other.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Where a circuit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Calls pass; failures are counted.
    Closed,
    /// Calls are refused until the reset timeout has passed.
    Open,
    /// Calls pass as trials; enough successes close the circuit, a failure
    /// opens it again.
    HalfOpen,
}

/// Why [`CircuitBreaker::call`] did not return the call's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CircuitBreakerError<E> {
    /// The circuit is open: the call was not made. Retry after `retry_in`.
    #[error("circuit open after repeated failures: call refused; retry in {}", crate::util::time::human(*retry_in))]
    Open {
        /// How long until the circuit lets a trial call through.
        retry_in: Duration,
    },
    /// The call was made and failed; its error, counted by the breaker.
    #[error("call failed: {0}")]
    Failed(E),
}

/// Thresholds and timing of a [`CircuitBreaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitBreakerConfig {
    /// Consecutive failures (while closed) that open the circuit.
    pub failure_threshold: u32,
    /// How long the circuit stays open before letting trials through.
    pub reset_timeout: Duration,
    /// Consecutive successful trials (while half-open) that close it.
    pub success_threshold: u32,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            reset_timeout: Duration::from_secs(30),
            success_threshold: 2,
        }
    }
}

/// A lock-free circuit breaker around any fallible future (an `ask`, an
/// HTTP call, a database query).
///
/// ```
/// use std::time::Duration;
/// use airssys_rt::supervisor::{CircuitBreaker, CircuitBreakerConfig, CircuitBreakerError, CircuitState};
///
/// # #[tokio::main] async fn main() {
/// let breaker = CircuitBreaker::new(CircuitBreakerConfig {
///     failure_threshold: 2,
///     reset_timeout: Duration::from_secs(10),
///     success_threshold: 1,
/// });
/// for _ in 0..2 {
///     let failed = breaker.call(async { Err::<(), _>("database down") }).await;
///     assert_eq!(failed, Err(CircuitBreakerError::Failed("database down")));
/// }
/// assert_eq!(breaker.state(), CircuitState::Open);
/// let refused = breaker.call(async { Ok::<_, &str>(1) }).await;
/// assert!(matches!(refused, Err(CircuitBreakerError::Open { .. })));
/// # }
/// ```
pub struct CircuitBreaker {
    config: CircuitBreakerConfig,
    /// `state` (2 bits) | failures (31 bits) << 2 | successes (31 bits) << 33.
    word: AtomicU64,
    /// When the circuit last opened, in nanoseconds since `epoch`.
    opened_at: AtomicU64,
    epoch: Instant,
}

const STATE_BITS: u64 = 0b11;
const COUNT_MASK: u64 = (1 << 31) - 1;

#[derive(Clone, Copy, PartialEq, Eq)]
struct Word {
    state: CircuitState,
    failures: u32,
    successes: u32,
}

impl Word {
    fn pack(self) -> u64 {
        let state = match self.state {
            CircuitState::Closed => 0,
            CircuitState::Open => 1,
            CircuitState::HalfOpen => 2,
        };
        state
            | (u64::from(self.failures) & COUNT_MASK) << 2
            | (u64::from(self.successes) & COUNT_MASK) << 33
    }

    fn unpack(word: u64) -> Self {
        let state = match word & STATE_BITS {
            0 => CircuitState::Closed,
            1 => CircuitState::Open,
            _ => CircuitState::HalfOpen,
        };
        Self {
            state,
            failures: ((word >> 2) & COUNT_MASK) as u32,
            successes: ((word >> 33) & COUNT_MASK) as u32,
        }
    }

    const CLOSED: Word = Word {
        state: CircuitState::Closed,
        failures: 0,
        successes: 0,
    };
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("config", &self.config)
            .field("state", &self.state())
            .finish()
    }
}

impl CircuitBreaker {
    /// A closed breaker with `config` (thresholds of 0 are taken as 1).
    pub fn new(config: CircuitBreakerConfig) -> Self {
        Self {
            config: CircuitBreakerConfig {
                failure_threshold: config.failure_threshold.clamp(1, COUNT_MASK as u32),
                success_threshold: config.success_threshold.clamp(1, COUNT_MASK as u32),
                ..config
            },
            word: AtomicU64::new(Word::CLOSED.pack()),
            opened_at: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &CircuitBreakerConfig {
        &self.config
    }

    /// The current state, as a call made now would see it (an open circuit
    /// whose reset timeout has passed reads as half-open).
    pub fn state(&self) -> CircuitState {
        match Word::unpack(self.word.load(Ordering::Acquire)).state {
            CircuitState::Open if self.retry_in().is_zero() => CircuitState::HalfOpen,
            state => state,
        }
    }

    /// Runs `call` unless the circuit is open, and counts its outcome.
    pub async fn call<T, E, F>(&self, call: F) -> Result<T, CircuitBreakerError<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        self.try_acquire()
            .map_err(|retry_in| CircuitBreakerError::Open { retry_in })?;
        match call.await {
            Ok(value) => {
                self.record_success();
                Ok(value)
            }
            Err(error) => {
                self.record_failure();
                Err(CircuitBreakerError::Failed(error))
            }
        }
    }

    /// Whether a call may be made now; if not, how long until it may. An
    /// open circuit whose timeout has passed becomes half-open here.
    pub fn try_acquire(&self) -> Result<(), Duration> {
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let word = Word::unpack(current);
            if word.state != CircuitState::Open {
                return Ok(());
            }
            let retry_in = self.retry_in();
            if !retry_in.is_zero() {
                return Err(retry_in);
            }
            let half_open = Word {
                state: CircuitState::HalfOpen,
                failures: 0,
                successes: 0,
            };
            match self.word.compare_exchange_weak(
                current,
                half_open.pack(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
    }

    /// Counts a successful call.
    pub fn record_success(&self) {
        self.update(|word| match word.state {
            CircuitState::Closed => Word {
                failures: 0,
                ..word
            },
            CircuitState::HalfOpen if word.successes + 1 >= self.config.success_threshold => {
                Word::CLOSED
            }
            CircuitState::HalfOpen => Word {
                successes: word.successes + 1,
                ..word
            },
            // A call that started before the circuit opened: no effect.
            CircuitState::Open => word,
        });
    }

    /// Counts a failed call.
    pub fn record_failure(&self) {
        let opened = self.update(|word| match word.state {
            CircuitState::Closed if word.failures + 1 >= self.config.failure_threshold => Word {
                state: CircuitState::Open,
                failures: 0,
                successes: 0,
            },
            CircuitState::Closed => Word {
                failures: word.failures + 1,
                ..word
            },
            CircuitState::HalfOpen => Word {
                state: CircuitState::Open,
                failures: 0,
                successes: 0,
            },
            CircuitState::Open => word,
        });
        if opened {
            tracing::warn!(reset_in = ?self.config.reset_timeout, "circuit breaker opened");
            metrics::counter!("airssys_rt_circuit_opened_total").increment(1);
        }
    }

    /// Applies `change` atomically; `true` if it moved the circuit to Open.
    fn update(&self, change: impl Fn(Word) -> Word) -> bool {
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let before = Word::unpack(current);
            let after = change(before);
            if after == before {
                return false;
            }
            let opens = after.state == CircuitState::Open && before.state != CircuitState::Open;
            if opens {
                // Written first: whoever sees Open also sees when it opened.
                self.opened_at.store(self.now_nanos(), Ordering::Release);
            }
            match self.word.compare_exchange_weak(
                current,
                after.pack(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return opens,
                Err(actual) => current = actual,
            }
        }
    }

    fn now_nanos(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Time left before an open circuit lets a trial through.
    fn retry_in(&self) -> Duration {
        let opened = Duration::from_nanos(self.opened_at.load(Ordering::Acquire));
        let reopens = opened.saturating_add(self.config.reset_timeout);
        reopens.saturating_sub(self.epoch.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for state in [
            CircuitState::Closed,
            CircuitState::Open,
            CircuitState::HalfOpen,
        ] {
            let word = Word {
                state,
                failures: COUNT_MASK as u32,
                successes: 7,
            };
            assert!(Word::unpack(word.pack()) == word);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_the_threshold_and_recovers_after_the_timeout() {
        let breaker = CircuitBreaker::new(CircuitBreakerConfig {
            failure_threshold: 3,
            reset_timeout: Duration::from_secs(10),
            success_threshold: 2,
        });
        for _ in 0..2 {
            breaker.record_failure();
        }
        breaker.record_success();
        breaker.record_failure();
        breaker.record_failure();
        assert_eq!(
            breaker.state(),
            CircuitState::Closed,
            "failures must be consecutive"
        );
        breaker.record_failure();
        assert_eq!(breaker.state(), CircuitState::Open);
        assert_eq!(breaker.try_acquire(), Err(Duration::from_secs(10)));
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(breaker.try_acquire(), Err(Duration::from_secs(6)));
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(breaker.try_acquire(), Ok(()));
        breaker.record_success();
        assert_eq!(breaker.state(), CircuitState::HalfOpen);
        breaker.record_success();
        assert_eq!(breaker.state(), CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_trial_opens_the_circuit_again() {
        let breaker = CircuitBreaker::new(CircuitBreakerConfig {
            failure_threshold: 1,
            reset_timeout: Duration::from_secs(1),
            success_threshold: 1,
        });
        let failed: Result<(), _> = breaker.call(async { Err("no") }).await;
        assert_eq!(failed, Err(CircuitBreakerError::Failed("no")));
        tokio::time::advance(Duration::from_secs(1)).await;
        let failed: Result<(), _> = breaker.call(async { Err("still no") }).await;
        assert_eq!(failed, Err(CircuitBreakerError::Failed("still no")));
        let refused = breaker.call(async { Ok::<_, &str>(()) }).await;
        assert_eq!(
            refused,
            Err(CircuitBreakerError::Open {
                retry_in: Duration::from_secs(1)
            })
        );
    }
}
