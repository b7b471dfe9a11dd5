// blocking_bench -- tasks that wait rather than compute (names: README.md):
//
//   Sleep/<pool>/workers:N/tasks:T/ms:M     each task sleeps M ms
//                                           (nanosleep)
//   PipeRead/<pool>/workers:N/tasks:T/ms:M  each task blocks on real I/O:
//                                           it opens FIFOs by path, sends
//                                           a request and reads one byte a
//                                           responder thread of this
//                                           process writes M ms later
//
// <pool> is thread or process. An iteration is the makespan of T tasks
// mapped at once. Waiting costs no processor, so up to N tasks wait side by
// side and the ideal makespan is ceil(T / N) * M ms; counter overhead_pct =
// 100 * (makespan / ideal - 1) is what the pool adds to it. Real
// (wall-clock) time; each pool is made and every worker started (all of them
// running a call at once) before the timing loop.
#include "common.hh"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <new>
#include <poll.h>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <thread>
#include <time.h>
#include <unistd.h>
#include <vector>

namespace {

using bench::Pool;
using Clock = std::chrono::steady_clock;

// Skips the benchmark saying why a call failed.
void fail(benchmark::State &state, cf_status st, const cf_error *error) {
    std::string why = cf_status_message(st);
    if (error)
        why =
            why + ": " + cf_error_type(error) + " " + cf_error_message(error);
    state.SkipWithError(why.c_str());
}

// Maps fn over n calls of nargs arguments each (args[i * nargs] ...), every
// call submitted at once, and takes every result. False (the benchmark
// skipped) if anything fails.
bool map_all(benchmark::State &state, cf_executor *ex, cf_fn fn,
             const std::vector<cf_value> &args, size_t n, size_t nargs) {
    cf_map_iter *it;
    cf_status st =
        cf_map(ex, fn, args.data(), n, nargs, CF_FOREVER, 1, 0, &it);
    if (st != CF_OK) {
        fail(state, st, cf_last_error());
        return false;
    }
    const cf_error *error = nullptr;
    for (size_t i = 0; st == CF_OK && i < n; i++) {
        cf_value v;
        st = cf_map_next(it, &v, &error);
        if (st == CF_OK)
            cf_value_free(&v);
    }
    if (st != CF_OK)
        fail(state, st, error);
    cf_map_close(it);
    return st == CF_OK;
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

bool start_workers(benchmark::State &state, cf_executor *ex, int workers) {
    arrivals->store(0);
    const std::vector<cf_value> args(workers, cf_int(workers));
    return map_all(state, ex, arrive_task, args, workers, 1);
}

// Raises Python's OSError for errno.
void raise_errno(cf_call *call, int err) {
    cf_raise(call, "OSError", "[Errno %d] %s", err, std::strerror(err));
}

// The Sleep task: nanosleep for its one int argument, in ms.
void sleep_task(cf_call *call) {
    const cf_value *ms = cf_arg(call, 0);
    if (ms == nullptr || ms->type != CF_TYPE_INT) {
        cf_raise(call, "TypeError", "sleep() takes one int");
        return;
    }
    struct timespec t = {static_cast<time_t>(ms->as.i / 1000),
                         static_cast<long>(ms->as.i % 1000 * 1000000)};
    while (nanosleep(&t, &t) != 0)
        if (errno != EINTR) {
            raise_errno(call, errno);
            return;
        }
}

// The PipeRead task: arguments (folder, i). Writes the one-byte request i
// on the folder's FIFO "req", then blocks reading the byte that answers it
// on the FIFO "r<i>".
void pipe_read_task(cf_call *call) {
    const cf_value *dir = cf_arg(call, 0), *i = cf_arg(call, 1);
    if (dir == nullptr || dir->type != CF_TYPE_STR || i == nullptr ||
        i->type != CF_TYPE_INT) {
        cf_raise(call, "TypeError", "pipe_read() takes a str and an int");
        return;
    }
    const std::string base(dir->as.buf.data, dir->as.buf.len);
    const std::string reply_path = base + "/r" + std::to_string(i->as.i);
    int reply = open(reply_path.c_str(), O_RDONLY | O_CLOEXEC);
    int request = open((base + "/req").c_str(), O_WRONLY | O_CLOEXEC);
    unsigned char c = static_cast<unsigned char>(i->as.i);
    bool ok = reply >= 0 && request >= 0 && write(request, &c, 1) == 1 &&
              read(reply, &c, 1) == 1;
    int err = errno;
    if (reply >= 0)
        close(reply);
    if (request >= 0)
        close(request);
    if (!ok)
        raise_errno(call, err);
}

// A private folder of FIFOs: "req", where every task writes its index (one
// byte, so at most 255 tasks), and "r<i>", where task i reads its answer.
// This process keeps each one open for reading and writing (Linux opens a
// FIFO so without waiting for a peer): a task's open never blocks, and its
// read never sees an end of file. Everything goes at destruction.
class Fifos {
  public:
    explicit Fifos(int tasks) {
        const char *tmp = std::getenv("TMPDIR");
        std::string dir =
            std::string(tmp && *tmp ? tmp : "/tmp") + "/cfutures-pipe-XXXXXX";
        if (!mkdtemp(&dir[0]))
            return;
        dir_ = dir;
        request_ = make("req");
        for (int i = 0; i < tasks; i++)
            replies_.push_back(make("r" + std::to_string(i)));
    }
    ~Fifos() {
        for (const std::string &path : paths_)
            unlink(path.c_str());
        if (!dir_.empty())
            rmdir(dir_.c_str());
        for (int fd : replies_)
            if (fd >= 0)
                close(fd);
        if (request_ >= 0)
            close(request_);
    }
    Fifos(const Fifos &) = delete;
    Fifos &operator=(const Fifos &) = delete;

    bool ok() const {
        for (int fd : replies_)
            if (fd < 0)
                return false;
        return !dir_.empty() && request_ >= 0;
    }
    const std::string &dir() const {
        return dir_;
    }
    int request() const {
        return request_;
    }
    int reply(int i) const {
        return replies_[i];
    }

  private:
    int make(const std::string &name) {
        std::string path = dir_ + "/" + name;
        if (mkfifo(path.c_str(), 0600) != 0)
            return -1;
        paths_.push_back(path);
        return open(path.c_str(), O_RDWR | O_CLOEXEC);
    }

    std::string dir_;
    std::vector<std::string> paths_;
    int request_ = -1;
    std::vector<int> replies_;
};

// The thread that answers each request `delay` after it arrived, however
// many are outstanding. The delay is the same for all, so the answers fall
// due in the order the requests came: a FIFO queue is the timer queue.
class Responder {
  public:
    Responder(const Fifos &fifos, Clock::duration delay)
        : fifos_(fifos), delay_(delay), thread_([this] { run(); }) {}
    ~Responder() {
        stop();
    }
    Responder(const Responder &) = delete;
    Responder &operator=(const Responder &) = delete;

    // Ends the thread; false if it failed before. Requests still to come
    // are never answered: stop only once no task is left.
    bool stop() {
        if (thread_.joinable()) {
            const unsigned char c = stop_byte;
            // The FIFO has room and a reader, so this cannot fail; if it
            // did, the join would never end.
            if (write(fifos_.request(), &c, 1) != 1)
                std::abort();
            thread_.join();
        }
        return !failed_;
    }

  private:
    static constexpr unsigned char stop_byte = 255;

    void run() {
        std::deque<std::pair<Clock::time_point, int>> due;
        for (;;) {
            struct pollfd p = {fifos_.request(), POLLIN, 0};
            struct timespec wait = {0, 0}, *timeout = nullptr;
            if (!due.empty()) {
                auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                              due.front().first - Clock::now())
                              .count();
                if (ns > 0)
                    wait = {static_cast<time_t>(ns / 1000000000),
                            static_cast<long>(ns % 1000000000)};
                timeout = &wait;
            }
            if (ppoll(&p, 1, timeout, nullptr) < 0 && errno != EINTR)
                break;
            if (p.revents & POLLIN) {
                unsigned char requests[256];
                ssize_t n = read(fifos_.request(), requests, sizeof requests);
                if (n <= 0)
                    break;
                const Clock::time_point at = Clock::now() + delay_;
                for (ssize_t k = 0; k < n; k++) {
                    if (requests[k] == stop_byte)
                        return;
                    due.emplace_back(at, requests[k]);
                }
            }
            for (Clock::time_point now = Clock::now();
                 !due.empty() && due.front().first <= now; due.pop_front()) {
                const unsigned char c = 'x';
                if (write(fifos_.reply(due.front().second), &c, 1) != 1) {
                    failed_ = true;
                    return;
                }
            }
        }
        failed_ = true;
    }

    const Fifos &fifos_;
    const Clock::duration delay_;
    std::atomic<bool> failed_{false};
    std::thread thread_;
};

// The makespan counter: 100 * (mean wall time per iteration since t0 /
// ideal - 1).
void count_overhead(benchmark::State &state, Clock::time_point t0, int workers,
                    int tasks, int ms) {
    if (state.iterations() == 0)
        return;
    const double ideal_s = (tasks + workers - 1) / workers * ms / 1e3;
    const double makespan_s =
        std::chrono::duration<double>(Clock::now() - t0).count() /
        static_cast<double>(state.iterations());
    state.counters["overhead_pct"] = 100 * (makespan_s / ideal_s - 1);
}

void sleep_bench(benchmark::State &state, Pool pool) {
    const int workers = static_cast<int>(state.range(0));
    const int tasks = static_cast<int>(state.range(1));
    const int ms = static_cast<int>(state.range(2));
    const std::vector<cf_value> args(tasks, cf_int(ms));
    cf_executor *ex = bench::make_pool(state, pool, workers);
    if (!ex)
        return;
    if (start_workers(state, ex, workers)) {
        const Clock::time_point t0 = Clock::now();
        for (auto _ : state)
            if (!map_all(state, ex, sleep_task, args, tasks, 1))
                break;
        count_overhead(state, t0, workers, tasks, ms);
    }
    cf_executor_free(ex);
}

void pipe_read_bench(benchmark::State &state, Pool pool) {
    const int workers = static_cast<int>(state.range(0));
    const int tasks = static_cast<int>(state.range(1));
    const int ms = static_cast<int>(state.range(2));
    Fifos fifos(tasks);
    cf_value dir = cf_none();
    if (!fifos.ok() || cf_value_str(&dir, fifos.dir().c_str()) != CF_OK) {
        state.SkipWithError("could not make the FIFOs");
        return;
    }
    std::vector<cf_value> args; // borrowed by cf_map: dir stays ours
    for (int i = 0; i < tasks; i++) {
        args.push_back(dir);
        args.push_back(cf_int(i));
    }
    cf_executor *ex = bench::make_pool(state, pool, workers);
    if (ex) {
        Responder responder(fifos, std::chrono::milliseconds(ms));
        if (start_workers(state, ex, workers)) {
            const Clock::time_point t0 = Clock::now();
            for (auto _ : state)
                if (!map_all(state, ex, pipe_read_task, args, tasks, 2))
                    break;
            count_overhead(state, t0, workers, tasks, ms);
        }
        // Before the responder stops: a task still running after a failure
        // gets its answer, and the free's wait for it ends.
        cf_executor_free(ex);
        if (!responder.stop())
            state.SkipWithError("the responder thread failed");
    }
    cf_value_free(&dir);
}

} // namespace

int main(int argc, char **argv) {
    if (!map_arrivals()) {
        std::perror("blocking_bench: mmap");
        return 1;
    }
    for (Pool pool : {Pool::thread, Pool::process}) {
        benchmark::RegisterBenchmark(bench::name("Sleep", pool).c_str(),
                                     sleep_bench, pool)
            ->ArgNames({"workers", "tasks", "ms"})
            ->ArgsProduct({{1, 2, 4, 8, 16, 32, 64}, {64}, {10}})
            ->Args({20, 20, 10})
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark(bench::name("PipeRead", pool).c_str(),
                                     pipe_read_bench, pool)
            ->ArgNames({"workers", "tasks", "ms"})
            ->ArgsProduct({{1, 2, 4, 8, 16, 32, 64}, {64}, {10}})
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
    }
    const int status = bench::run_main(argc, argv);
    munmap(arrivals, sizeof *arrivals);
    return status;
}
