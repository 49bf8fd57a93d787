//! Checks shared by the tests of the airssys-rt-only workloads.
#![allow(dead_code)]

use airssys_rt_compare::driver::Flavor;
use airssys_rt_compare::internal::{Internal, Variant};
use airssys_rt_compare::workload::Sizes;

/// `workload` has exactly `expected` variants, and each does all its work
/// (see [`variants_do_all_their_work`]).
pub fn every_variant_does_all_its_work(workload: Internal, expected: &[Variant]) {
    assert_eq!(workload.variants(), expected, "{workload:?} variants");
    variants_do_all_their_work(workload);
}

/// Each variant of `workload`, on both runtime shapes, processes every
/// operation, reports a cost and (for latency workloads) a p99 at least its
/// median.
pub fn variants_do_all_their_work(workload: Internal) {
    let latencies = workload.unit().contains("p99");
    for flavor in Flavor::ALL {
        for variant in workload.variants() {
            assert_eq!(variant.workload(), workload);
            let sample = variant.measure(flavor, Sizes::TINY);
            assert_eq!(
                sample.processed,
                workload.ops(&Sizes::TINY),
                "{variant:?} on {flavor:?}: every operation done"
            );
            assert!(sample.value > 0.0, "{variant:?} reported no cost");
            if latencies {
                assert!(
                    sample.secondary.is_some_and(|p99| p99 >= sample.value),
                    "{variant:?}: a p99 at least the median"
                );
            }
        }
    }
}

/// The workloads `--only <word>` picks (those whose label holds it).
pub fn picked_by(word: &str) -> Vec<Internal> {
    Internal::ALL
        .iter()
        .copied()
        .filter(|w| w.label().contains(word))
        .collect()
}
