//! The `sextant` binary: everything lives in the library; this only exits with its code.

/// mimalloc instead of the system allocator: a plan of 100,000 resources makes millions of
/// small allocations, where glibc's malloc spent half the CPU time consolidating free lists
/// (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(sextant::cli::main());
}
