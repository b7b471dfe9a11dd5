// common.hh -- what the C benchmark programs share: making and warming up
// a cfutures pool, no-op calls, and the JSON context every program adds.
#ifndef CF_BENCH_COMMON_HH
#define CF_BENCH_COMMON_HH

#include "cfutures.h"

#include <benchmark/benchmark.h>

#include <string>

namespace bench {

enum class Pool { thread, process };

const char *pool_name(Pool pool);

// A pool of `workers`; nullptr (and the benchmark skipped) on failure.
cf_executor *make_pool(benchmark::State &state, Pool pool, int workers);

// Starts every worker: one call per worker, all in flight at once. False
// (the benchmark skipped) if a call fails.
bool warm_up(benchmark::State &state, cf_executor *ex, int workers);

// A task that does nothing and returns None.
void noop(cf_call *call);

// Submits a no-op call and waits for it; false (the benchmark skipped) if
// either fails.
bool round_trip(benchmark::State &state, cf_executor *ex);

// "Workload/pool": the start of a benchmark name.
std::string name(const char *workload, Pool pool);

// Adds the context every program writes (language, pinned or not) and
// runs the registered benchmarks: a program's whole main() after it has
// registered them. Returns main's exit status.
int run_main(int argc, char **argv);

} // namespace bench

#endif
