//! Criterion benchmark of the planner's in-memory work (issue 8): diff and dependency
//! ordering (`make_plan`) of 100,000 resources, spread over 1,000 target groups and all on
//! one target group (the widest fan-in). Target: ≤ 1 s on one core.

use criterion::{Criterion, criterion_group, criterion_main};

use sextant::plan::{self, PlanOptions};

/// The allocator of the `sextant` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/plan_fixture.rs"]
mod plan_fixture;

fn diff_and_order(c: &mut Criterion) {
    let mut group = c.benchmark_group("make_plan");
    group.sample_size(10);
    for (name, targets) in [("100k over 1000 targets", 1000), ("100k on one target", 1)] {
        let (model, live) = plan_fixture::build(100_000, targets);
        let scope = plan::scope(&model, &[]);
        group.bench_function(name, |b| {
            b.iter(|| plan::make_plan(&model, &scope, &live, PlanOptions::default()))
        });
    }
    group.finish();
}

criterion_group!(benches, diff_and_order);
criterion_main!(benches);
