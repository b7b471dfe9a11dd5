// common.cc -- see common.hh.
#include "common.hh"

#include <sched.h>
#include <vector>

namespace bench {

const char *pool_name(Pool pool) {
    return pool == Pool::thread ? "thread" : "process";
}

cf_executor *make_pool(benchmark::State &state, Pool pool, int workers) {
    cf_executor *ex = nullptr;
    cf_status st;
    if (pool == Pool::thread) {
        cf_thread_pool_options o;
        cf_thread_pool_options_init(&o);
        o.max_workers = workers;
        st = cf_thread_pool_new(&o, &ex);
    } else {
        cf_process_pool_options o;
        cf_process_pool_options_init(&o);
        o.max_workers = workers;
        st = cf_process_pool_new(&o, &ex);
    }
    if (st != CF_OK) {
        state.SkipWithError(cf_status_message(st));
        return nullptr;
    }
    return ex;
}

void noop(cf_call *) {}

bool round_trip(benchmark::State &state, cf_executor *ex) {
    cf_future *f;
    cf_value v;
    cf_status st = cf_submit(ex, noop, nullptr, 0, &f);
    if (st == CF_OK) {
        st = cf_future_result(f, CF_FOREVER, &v);
        cf_future_release(f);
    }
    if (st != CF_OK)
        state.SkipWithError(cf_status_message(st));
    return st == CF_OK;
}

bool warm_up(benchmark::State &state, cf_executor *ex, int workers) {
    std::vector<cf_future *> fs;
    bool ok = true;
    for (int i = 0; i < workers && ok; i++) {
        cf_future *f;
        ok = cf_submit(ex, noop, nullptr, 0, &f) == CF_OK;
        if (ok)
            fs.push_back(f);
    }
    for (cf_future *f : fs) {
        cf_value v;
        ok = cf_future_result(f, CF_FOREVER, &v) == CF_OK && ok;
        cf_future_release(f);
    }
    if (!ok)
        state.SkipWithError("warm-up calls failed");
    return ok;
}

std::string name(const char *workload, Pool pool) {
    return std::string(workload) + "/" + pool_name(pool);
}

// "cpu0" when the process may run on CPU 0 alone (taskset -c 0), else
// "none".
static const char *pinned() {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) == 1 &&
        CPU_ISSET(0, &set))
        return "cpu0";
    return "none";
}

int run_main(int argc, char **argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 2;
    benchmark::AddCustomContext("language", "C");
    benchmark::AddCustomContext("pinned", pinned());
    benchmark::AddCustomContext("implementation", cf_implementation());
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}

} // namespace bench
