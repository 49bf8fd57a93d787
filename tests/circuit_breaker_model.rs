//! The circuit breaker against a reference state machine, on tokio's paused
//! clock: after every step, the state and the admission decision match.

use std::time::Duration;

use airssys_rt::supervisor::{CircuitBreaker, CircuitBreakerConfig, CircuitState};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Success,
    Failure,
    Acquire,
    Advance(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Success),
        3 => Just(Step::Failure),
        3 => Just(Step::Acquire),
        2 => (0u64..3_000).prop_map(Step::Advance),
    ]
}

/// The rules, written plainly with a virtual clock in milliseconds.
struct Model {
    config: CircuitBreakerConfig,
    state: CircuitState,
    failures: u32,
    successes: u32,
    opened_at: u64,
    now: u64,
}

impl Model {
    fn reset_ms(&self) -> u64 {
        self.config.reset_timeout.as_millis() as u64
    }

    fn retry_in(&self) -> u64 {
        (self.opened_at + self.reset_ms()).saturating_sub(self.now)
    }

    fn open(&mut self) {
        self.state = CircuitState::Open;
        self.opened_at = self.now;
        self.failures = 0;
        self.successes = 0;
    }

    fn apply(&mut self, step: &Step) -> Option<Result<(), u64>> {
        match step {
            Step::Advance(ms) => self.now += ms,
            Step::Success => match self.state {
                CircuitState::Closed => self.failures = 0,
                CircuitState::HalfOpen => {
                    self.successes += 1;
                    if self.successes >= self.config.success_threshold {
                        self.state = CircuitState::Closed;
                        self.successes = 0;
                    }
                }
                CircuitState::Open => {}
            },
            Step::Failure => match self.state {
                CircuitState::Closed => {
                    self.failures += 1;
                    if self.failures >= self.config.failure_threshold {
                        self.open();
                    }
                }
                CircuitState::HalfOpen => self.open(),
                CircuitState::Open => {}
            },
            Step::Acquire => {
                if self.state == CircuitState::Open {
                    if self.retry_in() > 0 {
                        return Some(Err(self.retry_in()));
                    }
                    self.state = CircuitState::HalfOpen;
                    self.successes = 0;
                }
                return Some(Ok(()));
            }
        }
        None
    }

    fn visible_state(&self) -> CircuitState {
        if self.state == CircuitState::Open && self.retry_in() == 0 {
            CircuitState::HalfOpen
        } else {
            self.state
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_breaker_follows_the_reference_state_machine(
        failure_threshold in 1u32..5,
        success_threshold in 1u32..4,
        reset_ms in 1u64..2_000,
        steps in proptest::collection::vec(step(), 1..80),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let config = CircuitBreakerConfig {
                failure_threshold,
                reset_timeout: Duration::from_millis(reset_ms),
                success_threshold,
            };
            let breaker = CircuitBreaker::new(config);
            let mut model = Model {
                config,
                state: CircuitState::Closed,
                failures: 0,
                successes: 0,
                opened_at: 0,
                now: 0,
            };
            for step in &steps {
                let expected = model.apply(step);
                match step {
                    Step::Advance(ms) => tokio::time::advance(Duration::from_millis(*ms)).await,
                    Step::Success => breaker.record_success(),
                    Step::Failure => breaker.record_failure(),
                    Step::Acquire => {
                        let seen = breaker.try_acquire().map_err(|d| d.as_millis() as u64);
                        prop_assert_eq!(Some(seen), expected, "{:?}", step);
                    }
                }
                prop_assert_eq!(breaker.state(), model.visible_state(), "after {:?}", step);
            }
            Ok(())
        })?;
    }
}

/// Concurrent failures are never lost: threshold − 1 failures from many
/// threads leave the circuit closed, and exactly one more opens it. Repeated
/// to give races a chance.
#[test]
fn concurrent_failures_are_counted_exactly() {
    const THREADS: u32 = 4;
    const PER_THREAD: u32 = 2_500;
    for _ in 0..20 {
        let breaker = CircuitBreaker::new(CircuitBreakerConfig {
            failure_threshold: THREADS * PER_THREAD + 1,
            reset_timeout: Duration::from_secs(60),
            success_threshold: 1,
        });
        std::thread::scope(|scope| {
            for _ in 0..THREADS {
                scope.spawn(|| {
                    for _ in 0..PER_THREAD {
                        breaker.record_failure();
                    }
                });
            }
        });
        assert_eq!(breaker.state(), CircuitState::Closed);
        breaker.record_failure();
        assert_eq!(breaker.state(), CircuitState::Open);
    }
}
