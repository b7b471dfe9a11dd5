// overheads_bench -- what the machinery of futures and pools costs, on
// calls that do nothing (names: README.md):
//
//   RoundTrip/<pool>/workers:1           submit a no-op call, wait for it
//   Batch/<pool>/workers:N/tasks:T       submit T no-op calls, then every
//                                        result (items_per_second)
//   Wait|AsCompleted/hand-made/futures:N/finished|pending
//                                        wait(ALL_COMPLETED) / a whole
//                                        as_completed pass over N futures
//                                        (ns_per_future)
//   Callback/hand-made/callbacks:K       K done-callbacks on one future
//                                        (ns_per_callback)
//   Map/process/workers:2/chunksize:C/items:T
//   PendingBytes/<pool>/workers:1/calls:N
//                                        resident memory per queued call
//                                        (bytes_per_future)
//
// Real (wall-clock) time throughout: the work happens in other threads and
// processes. Each pool is made and warmed up (its workers started) before
// the timing loop.
#include "common.hh"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fcntl.h>
#include <mutex>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <time.h>
#include <unistd.h>
#include <vector>

namespace {

using bench::Pool;

void pool_round_trip(benchmark::State &state, Pool pool) {
    cf_executor *ex = bench::make_pool(state, pool, 1);
    if (!ex)
        return;
    if (bench::warm_up(state, ex, 1))
        for (auto _ : state)
            if (!bench::round_trip(state, ex))
                break;
    cf_executor_free(ex);
}

void batch(benchmark::State &state, Pool pool) {
    const int workers = static_cast<int>(state.range(0));
    const size_t tasks = static_cast<size_t>(state.range(1));
    std::vector<cf_future *> fs(tasks);
    cf_executor *ex = bench::make_pool(state, pool, workers);
    if (!ex)
        return;
    bool ok = bench::warm_up(state, ex, workers);
    for (auto _ : state) {
        size_t n = 0;
        while (ok && n < tasks) {
            ok = cf_submit(ex, bench::noop, nullptr, 0, &fs[n]) == CF_OK;
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

// N hand-made futures, and a thread that finishes them all on request:
// the "pending, then finished" case of Wait and AsCompleted.
class Futures {
  public:
    explicit Futures(size_t n) : fs_(n) {}
    ~Futures() {
        stop();
        release();
    }

    // Fresh pending futures; false if one could not be made.
    bool make() {
        release();
        for (cf_future *&f : fs_)
            if (cf_future_new(&f) != CF_OK)
                return false;
        made_ = true;
        return true;
    }

    // Finishes every future in this thread.
    bool finish_all() {
        cf_value none = cf_none();
        bool ok = true;
        for (cf_future *f : fs_)
            ok = cf_future_set_result(f, &none) == CF_OK && ok;
        return ok;
    }

    // Asks the finishing thread (started on first use) to finish them.
    void finish_later() {
        if (!finisher_.joinable())
            finisher_ = std::thread([this] { finisher(); });
        std::lock_guard<std::mutex> hold(lock_);
        asked_++;
        cond_.notify_one();
    }

    // Waits until the finishing thread has done what was asked.
    bool finished_later() {
        std::unique_lock<std::mutex> hold(lock_);
        cond_.wait(hold, [this] { return done_ == asked_; });
        return later_ok_;
    }

    cf_future *const *data() const {
        return fs_.data();
    }
    size_t size() const {
        return fs_.size();
    }

  private:
    void finisher() {
        std::unique_lock<std::mutex> hold(lock_);
        for (;;) {
            cond_.wait(hold, [this] { return quit_ || asked_ > done_; });
            if (quit_)
                return;
            hold.unlock();
            bool ok = finish_all();
            hold.lock();
            later_ok_ = later_ok_ && ok;
            done_++;
            cond_.notify_all();
        }
    }

    void stop() {
        if (!finisher_.joinable())
            return;
        {
            std::lock_guard<std::mutex> hold(lock_);
            quit_ = true;
            cond_.notify_all();
        }
        finisher_.join();
    }

    void release() {
        if (made_)
            for (cf_future *f : fs_)
                if (f)
                    cf_future_release(f);
        std::fill(fs_.begin(), fs_.end(), nullptr);
        made_ = false;
    }

    std::vector<cf_future *> fs_;
    bool made_ = false;
    std::thread finisher_;
    std::mutex lock_;
    std::condition_variable cond_;
    unsigned asked_ = 0, done_ = 0;
    bool quit_ = false, later_ok_ = true;
};

enum class Start { finished, pending };

// One wait(ALL_COMPLETED) over every future; true if all were done.
bool wait_all(Futures &fs) {
    size_t ndone = 0;
    return cf_wait(fs.data(), fs.size(), CF_FOREVER, CF_ALL_COMPLETED, nullptr,
                   &ndone, nullptr, nullptr) == CF_OK &&
           ndone == fs.size();
}

// One whole as_completed pass; true if it yielded every future.
bool as_completed_all(Futures &fs) {
    cf_as_completed *it;
    if (cf_as_completed_new(fs.data(), fs.size(), CF_FOREVER, &it) != CF_OK)
        return false;
    size_t yielded = 0;
    cf_future *f;
    while (cf_as_completed_next(it, &f, nullptr) == CF_OK) {
        cf_future_release(f);
        yielded++;
    }
    cf_as_completed_free(it);
    return yielded == fs.size();
}

// Nanoseconds since an arbitrary start (the steady clock).
double now_ns() {
    return static_cast<double>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::steady_clock::now().time_since_epoch())
            .count());
}

// The futures are made (and, for `finished`, finished) outside the timed
// part; for `pending` the timed part starts when the finishing thread is
// asked, so it holds the waiting call and the finishing, side by side.
// The counter is computed from the timed parts' own clock (Google
// Benchmark's rates divide by CPU time).
void over_futures(benchmark::State &state, bool (*pass)(Futures &),
                  Start start, size_t n) {
    Futures fs(n);
    double timed_ns = 0;
    for (auto _ : state) {
        state.PauseTiming();
        bool ok = fs.make() && (start == Start::pending || fs.finish_all());
        state.ResumeTiming();
        double t0 = now_ns();
        if (ok && start == Start::pending)
            fs.finish_later();
        ok = ok && pass(fs);
        if (start == Start::pending)
            ok = fs.finished_later() && ok;
        timed_ns += now_ns() - t0;
        if (!ok) {
            state.SkipWithError("a future did not complete");
            break;
        }
    }
    state.counters["ns_per_future"] =
        timed_ns / static_cast<double>(state.iterations() * n);
}

cf_status count_call(cf_future *, void *ctx) {
    ++*static_cast<size_t *>(ctx);
    return CF_OK;
}

// A future, K callbacks added while it is pending, then set_result: they
// run in this thread.
void callbacks(benchmark::State &state) {
    const size_t k = static_cast<size_t>(state.range(0));
    size_t calls = 0;
    double t0 = now_ns();
    for (auto _ : state) {
        cf_future *f;
        cf_value none = cf_none();
        bool ok = cf_future_new(&f) == CF_OK;
        for (size_t i = 0; ok && i < k; i++)
            ok = cf_future_add_done_callback(f, count_call, &calls) == CF_OK;
        ok = ok && cf_future_set_result(f, &none) == CF_OK;
        if (ok)
            cf_future_release(f);
        if (!ok) {
            state.SkipWithError("a callback could not be added or run");
            break;
        }
    }
    double elapsed = now_ns() - t0;
    if (calls != state.iterations() * k)
        state.SkipWithError("callbacks ran the wrong number of times");
    state.counters["ns_per_callback"] =
        elapsed / static_cast<double>(state.iterations() * k);
}

// map(noop, range(T), chunksize=C) on a process pool of two.
void map_chunks(benchmark::State &state) {
    const size_t chunksize = static_cast<size_t>(state.range(0));
    const size_t items = static_cast<size_t>(state.range(1));
    std::vector<cf_value> args(items);
    for (size_t i = 0; i < items; i++)
        args[i] = cf_int(static_cast<int64_t>(i));
    cf_executor *ex = bench::make_pool(state, Pool::process, 2);
    if (!ex)
        return;
    bool ok = bench::warm_up(state, ex, 2);
    for (auto _ : state) {
        cf_map_iter *it;
        ok = ok && cf_map(ex, bench::noop, args.data(), items, 1, CF_FOREVER,
                          chunksize, 0, &it) == CF_OK;
        for (size_t i = 0; ok && i < items; i++) {
            cf_value v;
            ok = cf_map_next(it, &v, nullptr) == CF_OK;
        }
        if (ok)
            cf_map_close(it);
        if (!ok) {
            state.SkipWithError("map failed");
            break;
        }
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * items));
    cf_executor_free(ex);
}

// Resident memory in octets (/proc/self/statm).
long resident_bytes() {
    long pages = -1, resident = -1;
    FILE *f = std::fopen("/proc/self/statm", "r");
    if (f) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = -1;
        std::fclose(f);
    }
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

// A task that returns once the file named by its argument exists: it
// keeps a worker, thread or process, busy while calls queue behind it.
void wait_for_file(cf_call *call) {
    const cf_value *path = cf_arg(call, 0);
    struct stat st;
    const struct timespec ms = {0, 1000000};
    while (stat(path->as.buf.data, &st) != 0)
        nanosleep(&ms, nullptr);
}

// RSS growth over N calls queued behind a blocked worker, per call (-1 if
// they could not be queued); then the queue is cancelled (shutdown with
// cancel_futures) so that nothing runs them.
double queued_call_bytes(Pool pool, size_t calls, const std::string &release) {
    cf_thread_pool_options to;
    cf_process_pool_options po;
    cf_executor *ex = nullptr;
    cf_thread_pool_options_init(&to);
    cf_process_pool_options_init(&po);
    to.max_workers = po.max_workers = 1;
    if ((pool == Pool::thread ? cf_thread_pool_new(&to, &ex)
                              : cf_process_pool_new(&po, &ex)) != CF_OK)
        return -1;
    std::vector<cf_future *> fs(calls);
    cf_value path;
    cf_future *blocker = nullptr;
    bool ok = cf_value_str(&path, release.c_str()) == CF_OK;
    ok = ok && cf_submit(ex, wait_for_file, &path, 1, &blocker) == CF_OK;
    long before = resident_bytes();
    size_t n = 0;
    while (ok && n < calls) {
        ok = cf_submit(ex, bench::noop, nullptr, 0, &fs[n]) == CF_OK;
        n += ok;
    }
    long after = resident_bytes();
    int fd = open(release.c_str(), O_CREAT | O_WRONLY, 0600);
    if (fd >= 0)
        close(fd);
    cf_executor_shutdown(ex, true, true);
    for (size_t i = 0; i < n; i++)
        cf_future_release(fs[i]);
    if (blocker)
        cf_future_release(blocker);
    cf_value_free(&path);
    cf_executor_free(ex);
    if (!ok || before < 0 || after < 0)
        return -1;
    return static_cast<double>(after - before) / static_cast<double>(calls);
}

// queued_call_bytes in a child process of its own, whose heap holds no
// memory freed by earlier benchmarks (it would be reused without growing
// the resident set).
void pending_bytes(benchmark::State &state, Pool pool) {
    const size_t calls = static_cast<size_t>(state.range(0));
    char dir[] = "/tmp/cf-pending-XXXXXX";
    if (!mkdtemp(dir)) {
        state.SkipWithError("mkdtemp failed");
        return;
    }
    const std::string release = std::string(dir) + "/release";
    double per_call = -1;
    for (auto _ : state) {
        int out[2];
        if (pipe(out) != 0)
            break;
        pid_t pid = fork();
        if (pid == 0) {
            double got = queued_call_bytes(pool, calls, release);
            _exit(write(out[1], &got, sizeof got) == sizeof got ? 0 : 1);
        }
        close(out[1]);
        if (pid < 0 || read(out[0], &per_call, sizeof per_call) !=
                           static_cast<ssize_t>(sizeof per_call))
            per_call = -1;
        close(out[0]);
        if (pid > 0)
            waitpid(pid, nullptr, 0);
        unlink(release.c_str());
    }
    rmdir(dir);
    if (per_call < 0)
        state.SkipWithError("the calls could not be queued or measured");
    state.counters["bytes_per_future"] = per_call;
}

std::string with_args(const std::string &base, const std::string &args) {
    return base + "/" + args;
}

} // namespace

int main(int argc, char **argv) {
    for (Pool pool : {Pool::thread, Pool::process}) {
        benchmark::RegisterBenchmark(
            with_args(bench::name("RoundTrip", pool), "workers:1").c_str(),
            pool_round_trip, pool)
            ->UseRealTime();
        benchmark::RegisterBenchmark(bench::name("Batch", pool).c_str(), batch,
                                     pool)
            ->ArgNames({"workers", "tasks"})
            ->Args({1, 10000})
            ->Args({2, 10000})
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
    }
    for (auto [workload, pass] : {std::pair{"Wait", wait_all},
                                  std::pair{"AsCompleted", as_completed_all}})
        for (auto [start, label] : {std::pair{Start::finished, "finished"},
                                    std::pair{Start::pending, "pending"}})
            for (size_t n : {1000, 10000, 100000})
                benchmark::RegisterBenchmark(
                    (std::string(workload) +
                     "/hand-made/futures:" + std::to_string(n) + "/" + label)
                        .c_str(),
                    over_futures, pass, start, n)
                    ->UseRealTime()
                    ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("Callback/hand-made", callbacks)
        ->ArgName("callbacks")
        ->Arg(1)
        ->Arg(16)
        ->UseRealTime();
    benchmark::RegisterBenchmark("Map/process/workers:2", map_chunks)
        ->ArgNames({"chunksize", "items"})
        ->Args({1, 10000})
        ->Args({64, 10000})
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    for (Pool pool : {Pool::thread, Pool::process})
        benchmark::RegisterBenchmark(
            with_args(bench::name("PendingBytes", pool), "workers:1").c_str(),
            pending_bytes, pool)
            ->ArgName("calls")
            ->Arg(1000000)
            ->Iterations(1)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
    return bench::run_main(argc, argv);
}
