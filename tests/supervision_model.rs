//! Random failure schedules against a reference model of OTP's supervisor
//! rules: the events a real supervisor publishes must be exactly the model's.

mod supervision_kit;

use std::time::Duration;

use airssys_rt::prelude::*;
use proptest::prelude::*;
use supervision_kit::*;

fn strategy() -> impl Strategy<Value = SupervisionStrategy> {
    prop_oneof![
        Just(SupervisionStrategy::OneForOne),
        Just(SupervisionStrategy::OneForAll),
        Just(SupervisionStrategy::RestForOne),
    ]
}

fn restart_type() -> impl Strategy<Value = RestartType> {
    prop_oneof![
        3 => Just(RestartType::Permanent),
        2 => Just(RestartType::Transient),
        1 => Just(RestartType::Temporary),
    ]
}

fn how() -> impl Strategy<Value = How> {
    prop_oneof![
        Just(How::Normal),
        Just(How::Shutdown),
        Just(How::Error),
        Just(How::Panic),
        Just(How::Killed),
    ]
}

const IDS: [&str; 4] = ["a", "b", "c", "d"];

async fn run_schedule(
    strategy: SupervisionStrategy,
    max_restarts: u32,
    types: Vec<RestartType>,
    schedule: Vec<(usize, How)>,
) -> Result<(), TestCaseError> {
    let system = system();
    let mut events = system.supervision_events();
    let log = Log::default();
    let children: Vec<(&str, RestartType)> = IDS.iter().copied().zip(types).collect();
    let mut spec = SupervisorSpec::new(strategy).intensity(max_restarts, Duration::from_secs(3600));
    for (id, restart) in &children {
        spec = spec.child(worker(id, &log).restart(*restart));
    }
    let supervisor = system.start_supervisor(spec).await.expect("starts");
    drain(&mut events);
    let mut model = Model::new(strategy, max_restarts, &children);
    for (pick, how) in schedule {
        let running = model.running();
        if model.gave_up || running.is_empty() {
            break;
        }
        let id = &running[pick % running.len()];
        let expected = model.fail(id, how);
        let seen = fail_and_settle(&supervisor, &mut events, id, how).await;
        prop_assert_eq!(&seen, &expected, "{} exits as {}", id, how.label());
    }
    if model.gave_up {
        prop_assert_eq!(supervisor.wait_for_exit().await, ExitReason::Shutdown);
        prop_assert_eq!(system.actor_count(), 0);
    } else {
        let children = supervisor.which_children().await.expect("running");
        let seen: Vec<(String, bool)> = children
            .iter()
            .map(|c| (c.id.to_string(), c.actor.is_some()))
            .collect();
        let expected: Vec<(String, bool)> =
            model.children.iter().map(|c| (c.0.clone(), c.2)).collect();
        prop_assert_eq!(seen, expected);
    }
    system.shutdown(Duration::from_secs(5)).await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn supervisor_events_match_the_otp_model(
        strategy in strategy(),
        max_restarts in 0u32..6,
        types in proptest::collection::vec(restart_type(), 1..=4),
        schedule in proptest::collection::vec((0usize..4, how()), 1..12),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(run_schedule(strategy, max_restarts, types, schedule))?;
    }
}
