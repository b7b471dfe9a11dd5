// process_pool_bench -- what a call costs on each pool, next to what the
// operating system itself costs:
//
//   RoundTrip/pipe                  one byte to another process and back
//   RoundTrip/<pool>/workers:1      submit a no-op call, wait for its result
//   Batch/<pool>/workers:N/tasks:T  submit T no-op calls, then every result
//   IsPrime/<pool>/workers:N/copies:K
//                                   the docs' map(is_prime, PRIMES), over K
//                                   copies of PRIMES (K = 1: the docs' own)
//
// <pool> is "thread" or "process". Real (wall-clock) time is what counts:
// the work happens in other threads and processes. Each pool is made and
// warmed up (its workers started) before the timing loop. The Python
// counterpart, python/process_pool_bench.py, times CPython's pools under
// the same names, so one JSON reader compares them.
#include "cfutures.h"
#include "primes.h"

#include <benchmark/benchmark.h>

#include <csignal>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

enum class Pool { thread, process };

const char *pool_name(Pool pool) {
    return pool == Pool::thread ? "thread" : "process";
}

// A pool of `workers`; nullptr (and the benchmark skipped) on failure.
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

// Submits a no-op call and waits for it; false (the benchmark skipped) if
// either fails.
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

// Starts every worker: one call per worker, all in flight at once.
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

void pipe_round_trip(benchmark::State &state) {
    int to[2], from[2];
    if (pipe(to) || pipe(from)) {
        state.SkipWithError("pipe failed");
        return;
    }
    pid_t pid = fork();
    if (pid == 0) { // echo every byte back until EOF
        char c;
        close(to[1]);
        close(from[0]);
        while (read(to[0], &c, 1) == 1 && write(from[1], &c, 1) == 1)
            ;
        _exit(0);
    }
    close(to[0]);
    close(from[1]);
    for (auto _ : state) {
        char c = 'x';
        if (pid < 0 || write(to[1], &c, 1) != 1 || read(from[0], &c, 1) != 1) {
            state.SkipWithError("the echo process failed");
            break;
        }
    }
    close(to[1]);
    close(from[0]);
    if (pid > 0)
        waitpid(pid, nullptr, 0);
}

void pool_round_trip(benchmark::State &state, Pool pool) {
    cf_executor *ex = make_pool(state, pool, 1);
    if (!ex)
        return;
    if (warm_up(state, ex, 1))
        for (auto _ : state)
            if (!round_trip(state, ex))
                break;
    cf_executor_free(ex);
}

void batch(benchmark::State &state, Pool pool) {
    const int workers = static_cast<int>(state.range(0));
    const size_t tasks = static_cast<size_t>(state.range(1));
    std::vector<cf_future *> fs(tasks);
    cf_executor *ex = make_pool(state, pool, workers);
    if (!ex)
        return;
    bool ok = warm_up(state, ex, workers);
    for (auto _ : state) {
        size_t n = 0;
        while (ok && n < tasks) {
            ok = cf_submit(ex, noop, nullptr, 0, &fs[n]) == CF_OK;
            n += ok;
        }
        for (size_t i = 0; i < n; i++) {
            cf_value v;
            ok = cf_future_result(fs[i], CF_FOREVER, &v) == CF_OK && ok;
            cf_future_release(fs[i]);
        }
        if (!ok) {
            state.SkipWithError("a call failed");
            break;
        }
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * tasks));
    cf_executor_free(ex);
}

void primes(benchmark::State &state, Pool pool) {
    const int workers = static_cast<int>(state.range(0));
    const size_t copies = static_cast<size_t>(state.range(1));
    std::vector<cf_value> args(NPRIMES * copies);
    for (size_t i = 0; i < args.size(); i++)
        args[i] = cf_int(PRIMES[i % NPRIMES]);
    cf_executor *ex = make_pool(state, pool, workers);
    if (!ex)
        return;
    bool ok = warm_up(state, ex, workers);
    for (auto _ : state) {
        cf_map_iter *it;
        ok = ok && cf_map(ex, is_prime, args.data(), args.size(), 1,
                          CF_FOREVER, 1, 0, &it) == CF_OK;
        for (size_t i = 0; ok && i < args.size(); i++) {
            cf_value v;
            const cf_error *error;
            ok = cf_map_next(it, &v, &error) == CF_OK &&
                 v.as.b == PRIMES_EXPECTED[i % NPRIMES];
        }
        if (ok)
            cf_map_close(it);
        if (!ok) {
            state.SkipWithError("is_prime failed");
            break;
        }
    }
    cf_executor_free(ex);
}

std::string pool_path(const char *workload, Pool pool) {
    return std::string(workload) + "/" + pool_name(pool);
}

} // namespace

int main(int argc, char **argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 2;
    benchmark::RegisterBenchmark("RoundTrip/pipe", pipe_round_trip)
        ->UseRealTime();
    for (Pool pool : {Pool::thread, Pool::process}) {
        benchmark::RegisterBenchmark(
            (pool_path("RoundTrip", pool) + "/workers:1").c_str(),
            pool_round_trip, pool)
            ->UseRealTime();
        benchmark::RegisterBenchmark(pool_path("Batch", pool).c_str(), batch,
                                     pool)
            ->ArgNames({"workers", "tasks"})
            ->Args({1, 10000})
            ->Args({2, 10000})
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark(pool_path("IsPrime", pool).c_str(),
                                     primes, pool)
            ->ArgNames({"workers", "copies"})
            ->ArgsProduct({{1, 2}, {1, 4}})
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
