// cpu_bench -- CPU-bound work on each pool (names: README.md):
//
//   IsPrime/<pool>/workers:N/copies:K   the docs' map(is_prime, PRIMES), over
//                                       K copies of PRIMES
//   IsPrime/serial/copies:K             the same calls in a plain loop
//   IsPrimeOne/serial/index:I           one is_prime(PRIMES[I]): the task
//                                       times an ideal makespan comes from
//   Granularity/<pool>/workers:2/work_us:W/tasks:T
//                                       T tasks each spinning W µs
//                                       (ns_per_task); serial: a plain loop
//
// <pool> is thread, process or thread-gil: the thread pool with the GIL
// emulation (gil.h; counter gil_switches, the lock's hand-overs per
// iteration). They show whether a pool speeds CPU-bound work up at all --
// CPython's thread pool cannot, because of the GIL -- and from what task
// size it pays. The spin is calibrated once, before any pool exists (spin.h;
// context spin_iterations_per_us). Real (wall-clock) time throughout; each
// pool is made and its workers started before the timing loop.
#include "common.hh"
#include "gil.h"
#include "primes.h"
#include "spin.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <new>
#include <string>
#include <sys/mman.h>
#include <thread>
#include <vector>

namespace {

using bench::Pool;
using Clock = std::chrono::steady_clock;

// A pool as this program names it, with the task functions it runs.
struct Kind {
    const char *name;
    Pool pool;
    cf_fn is_prime;
    cf_fn spin;
    bool gil;
};

const Kind kinds[] = {
    {"thread", Pool::thread, is_prime, spin_task, false},
    {"process", Pool::process, is_prime, spin_task, false},
    {"thread-gil", Pool::thread, is_prime_gil, spin_gil, true},
};

double ns_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
}

// Skips the benchmark saying why a call failed: st and its error, or
// (st == CF_OK) a wrong result.
void fail(benchmark::State &state, cf_status st, const cf_error *error) {
    std::string why =
        st == CF_OK ? "a call returned a wrong result" : cf_status_message(st);
    if (error && st != CF_OK)
        why =
            why + ": " + cf_error_type(error) + " " + cf_error_message(error);
    state.SkipWithError(why.c_str());
}

// Maps fn over args (one argument per call, every call submitted at once)
// and checks each result against want. False (the benchmark skipped) if
// anything fails.
bool map_all(benchmark::State &state, cf_executor *ex, cf_fn fn,
             const std::vector<cf_value> &args,
             const std::vector<cf_value> &want) {
    cf_map_iter *it;
    cf_status st =
        cf_map(ex, fn, args.data(), args.size(), 1, CF_FOREVER, 1, 0, &it);
    if (st != CF_OK) {
        fail(state, st, cf_last_error());
        return false;
    }
    const cf_error *error = nullptr;
    bool ok = true;
    for (size_t i = 0; ok && i < args.size(); i++) {
        cf_value v;
        st = cf_map_next(it, &v, &error);
        ok = st == CF_OK && cf_value_equal(&v, &want[i]);
        if (st == CF_OK)
            cf_value_free(&v);
    }
    if (!ok)
        fail(state, st, error);
    cf_map_close(it);
    return ok;
}

// fn(arg) in this thread, checked against want.
bool call(benchmark::State &state, cf_fn fn, const cf_value &arg,
          const cf_value &want) {
    cf_value v = cf_none();
    cf_error *error = nullptr;
    cf_status st = cf_call_fn(fn, &arg, 1, &v, &error);
    bool ok = st == CF_OK && cf_value_equal(&v, &want);
    if (!ok)
        fail(state, st, error);
    cf_error_free(error);
    cf_value_free(&v);
    return ok;
}

int64_t spin_iterations(double work_us, double per_us) {
    return std::llround(work_us * per_us);
}

// Starting every worker: `workers` calls that each wait until all of them
// run at once, which takes that many workers (each runs one call at a
// time). No-op calls would not do: a few early workers can run them all
// while the others are still starting. The calls count themselves in a
// shared page mapped before any pool, so process workers (forks of this
// process) share it too.
std::atomic<int> *arrivals;

bool map_arrivals() {
    void *page = mmap(nullptr, sizeof *arrivals, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return false;
    arrivals = new (page) std::atomic<int>(0);
    return true;
}

void arrive_task(cf_call *call) {
    const cf_value *n = cf_arg(call, 0);
    if (n == nullptr || n->type != CF_TYPE_INT) {
        cf_raise(call, "TypeError", "arrive() takes one int");
        return;
    }
    arrivals->fetch_add(1);
    const Clock::time_point give_up = Clock::now() + std::chrono::seconds(10);
    while (arrivals->load() < n->as.i) {
        if (Clock::now() > give_up) {
            cf_raise(call, "TimeoutError", "only %d of %d workers started",
                     arrivals->load(), static_cast<int>(n->as.i));
            return;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
}

// A pool of `workers`, every one started; nullptr (the benchmark skipped)
// on failure.
cf_executor *started_pool(benchmark::State &state, Pool pool, int workers) {
    cf_executor *ex = bench::make_pool(state, pool, workers);
    arrivals->store(0);
    const std::vector<cf_value> args(workers, cf_int(workers));
    const std::vector<cf_value> want(workers, cf_none());
    if (ex && !map_all(state, ex, arrive_task, args, want)) {
        cf_executor_free(ex);
        return nullptr;
    }
    return ex;
}

// Hand-overs of the GIL per iteration since `before`.
void count_switches(benchmark::State &state, unsigned long before) {
    state.counters["gil_switches"] =
        benchmark::Counter(static_cast<double>(gil_switches() - before),
                           benchmark::Counter::kAvgIterations);
}

// K copies of PRIMES as arguments, and the answers.
std::vector<cf_value> primes_args(size_t copies) {
    std::vector<cf_value> args(NPRIMES * copies);
    for (size_t i = 0; i < args.size(); i++)
        args[i] = cf_int(PRIMES[i % NPRIMES]);
    return args;
}

std::vector<cf_value> primes_want(size_t copies) {
    std::vector<cf_value> want(NPRIMES * copies);
    for (size_t i = 0; i < want.size(); i++)
        want[i] = cf_bool(PRIMES_EXPECTED[i % NPRIMES]);
    return want;
}

void is_prime_pool(benchmark::State &state, const Kind *kind) {
    const int workers = static_cast<int>(state.range(0));
    const size_t copies = static_cast<size_t>(state.range(1));
    const std::vector<cf_value> args = primes_args(copies);
    const std::vector<cf_value> want = primes_want(copies);
    cf_executor *ex = started_pool(state, kind->pool, workers);
    if (!ex)
        return;
    const unsigned long switches = gil_switches();
    for (auto _ : state)
        if (!map_all(state, ex, kind->is_prime, args, want))
            break;
    if (kind->gil)
        count_switches(state, switches);
    cf_executor_free(ex);
}

void is_prime_serial(benchmark::State &state) {
    const size_t copies = static_cast<size_t>(state.range(0));
    const std::vector<cf_value> args = primes_args(copies);
    const std::vector<cf_value> want = primes_want(copies);
    bool ok = true;
    for (auto _ : state) {
        for (size_t i = 0; ok && i < args.size(); i++)
            ok = call(state, is_prime, args[i], want[i]);
        if (!ok)
            break;
    }
}

void is_prime_one(benchmark::State &state) {
    const size_t index = static_cast<size_t>(state.range(0));
    const cf_value arg = cf_int(PRIMES[index]);
    const cf_value want = cf_bool(PRIMES_EXPECTED[index]);
    for (auto _ : state)
        if (!call(state, is_prime, arg, want))
            break;
}

// ns_per_task: the wall time since t0 per task run.
void count_ns_per_task(benchmark::State &state, Clock::time_point t0,
                       int64_t tasks) {
    if (state.iterations() > 0)
        state.counters["ns_per_task"] =
            ns_since(t0) / static_cast<double>(state.iterations() * tasks);
}

void granularity_pool(benchmark::State &state, const Kind *kind,
                      double per_us) {
    const int workers = static_cast<int>(state.range(0));
    const int64_t iterations =
        spin_iterations(static_cast<double>(state.range(1)), per_us);
    const int64_t tasks = state.range(2);
    const std::vector<cf_value> args(tasks, cf_int(iterations));
    const std::vector<cf_value> want(tasks, cf_none());
    cf_executor *ex = started_pool(state, kind->pool, workers);
    if (!ex)
        return;
    const unsigned long switches = gil_switches();
    const Clock::time_point t0 = Clock::now();
    for (auto _ : state)
        if (!map_all(state, ex, kind->spin, args, want))
            break;
    count_ns_per_task(state, t0, tasks);
    if (kind->gil)
        count_switches(state, switches);
    cf_executor_free(ex);
}

void granularity_serial(benchmark::State &state, double per_us) {
    const int64_t iterations =
        spin_iterations(static_cast<double>(state.range(1)), per_us);
    const int64_t tasks = state.range(2);
    const Clock::time_point t0 = Clock::now();
    for (auto _ : state)
        for (int64_t i = 0; i < tasks; i++)
            spin(iterations);
    count_ns_per_task(state, t0, tasks);
}

// Granularity's rows: workers:2/work_us:W/tasks:max(16, 200000 / W).
void granularity_args(benchmark::internal::Benchmark *b) {
    b->ArgNames({"workers", "work_us", "tasks"});
    for (int64_t us : {1, 3, 10, 30, 100, 300, 1000, 3000, 10000})
        b->Args({2, us, std::max<int64_t>(16, 200000 / us)});
}

} // namespace

int main(int argc, char **argv) {
    if (!map_arrivals()) {
        std::perror("cpu_bench: mmap");
        return 1;
    }
    const double per_us = spin_calibrate();
    benchmark::AddCustomContext("spin_iterations_per_us",
                                std::to_string(per_us));
    const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
    std::vector<int64_t> workers;
    for (int64_t n = 1; n <= 2 * cores; n++)
        workers.push_back(n);

    for (const Kind &kind : kinds)
        benchmark::RegisterBenchmark(
            (std::string("IsPrime/") + kind.name).c_str(), is_prime_pool,
            &kind)
            ->ArgNames({"workers", "copies"})
            ->ArgsProduct({workers, {1, 4}})
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("IsPrime/serial", is_prime_serial)
        ->ArgName("copies")
        ->Arg(1)
        ->Arg(4)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("IsPrimeOne/serial", is_prime_one)
        ->ArgName("index")
        ->DenseRange(0, NPRIMES - 1)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);

    benchmark::RegisterBenchmark("Granularity/serial", granularity_serial,
                                 per_us)
        ->Apply(granularity_args)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    for (const Kind &kind : kinds)
        benchmark::RegisterBenchmark(
            (std::string("Granularity/") + kind.name).c_str(),
            granularity_pool, &kind, per_us)
            ->Apply(granularity_args)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
    const int status = bench::run_main(argc, argv);
    munmap(arrivals, sizeof *arrivals);
    return status;
}
