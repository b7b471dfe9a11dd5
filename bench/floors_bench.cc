// floors_bench -- what the operating system itself costs, measured in the
// same run as the pools, so that each pool is judged against the physical
// limit of what it does (names: README.md):
//
//   RoundTrip/futex/threads:2/cpus:any|cross
//       one thread wakes another through a futex and waits to be woken
//       back; `cross` puts them on CPUs 0 and 1 (skipped with one CPU)
//   RoundTrip/condvar/threads:2/cpus:any|cross
//       the same with a mutex and a condition variable
//   RoundTrip/pipe/processes:2
//       eight octets to another process and back
//   RoundTrip/pipe-pool/workers:1, Batch/pipe-pool/workers:N/tasks:T
//       a hand-written pool of pre-forked processes, one pipe pair each,
//       with a result slot (a "future") per task
//   Sleep/nanosleep/ms:10
//       one bare 10 ms nanosleep
#include "common.hh"

#include <atomic>
#include <climits>
#include <condition_variable>
#include <linux/futex.h>
#include <mutex>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <time.h>
#include <unistd.h>
#include <vector>

namespace {

// ---- two threads ----------------------------------------------------------

// Pins the calling thread to one CPU; false if it cannot run there.
bool pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

// Whether the process may run on CPUs 0 and 1.
bool two_cpus() {
    cpu_set_t set;
    return sched_getaffinity(0, sizeof set, &set) == 0 && CPU_ISSET(0, &set) &&
           CPU_ISSET(1, &set);
}

// The calling thread's affinity, put back when this goes.
class KeepAffinity {
  public:
    KeepAffinity() {
        ok_ = pthread_getaffinity_np(pthread_self(), sizeof set_, &set_) == 0;
    }
    ~KeepAffinity() {
        if (ok_)
            pthread_setaffinity_np(pthread_self(), sizeof set_, &set_);
    }

  private:
    cpu_set_t set_;
    bool ok_;
};

long futex(std::atomic<int> *word, int op, int value) {
    return syscall(SYS_futex, reinterpret_cast<int *>(word),
                   op | FUTEX_PRIVATE_FLAG, value, nullptr, nullptr, 0);
}

// Waits until *word is want, sleeping in the futex.
void futex_wait_for(std::atomic<int> *word, int want) {
    for (int v; (v = word->load(std::memory_order_acquire)) != want;)
        futex(word, FUTEX_WAIT, v);
}

void futex_set(std::atomic<int> *word, int value) {
    word->store(value, std::memory_order_release);
    futex(word, FUTEX_WAKE, 1);
}

// The word goes 0 -> 1 (the benchmark asks) -> 2 (the partner answers) ->
// 0 ...; -1 tells the partner to stop.
void futex_ping_pong(benchmark::State &state, bool cross) {
    if (cross && !two_cpus()) {
        state.SkipWithError("needs CPUs 0 and 1");
        return;
    }
    KeepAffinity keep;
    std::atomic<int> word{0};
    std::thread partner([&] {
        if (cross)
            pin_to(1);
        for (;;) {
            int v;
            while ((v = word.load(std::memory_order_acquire)) == 0 || v == 2)
                futex(&word, FUTEX_WAIT, v);
            if (v < 0)
                return;
            futex_set(&word, 2);
        }
    });
    if (cross)
        pin_to(0);
    for (auto _ : state) {
        futex_set(&word, 1);
        futex_wait_for(&word, 2);
        word.store(0, std::memory_order_relaxed);
    }
    futex_set(&word, -1);
    partner.join();
}

void condvar_ping_pong(benchmark::State &state, bool cross) {
    if (cross && !two_cpus()) {
        state.SkipWithError("needs CPUs 0 and 1");
        return;
    }
    KeepAffinity keep;
    std::mutex lock;
    std::condition_variable asked, answered;
    int turn = 0; // 0 idle, 1 asked, 2 answered, -1 stop
    std::thread partner([&] {
        if (cross)
            pin_to(1);
        std::unique_lock<std::mutex> hold(lock);
        for (;;) {
            asked.wait(hold, [&] { return turn == 1 || turn < 0; });
            if (turn < 0)
                return;
            turn = 2;
            answered.notify_one();
        }
    });
    if (cross)
        pin_to(0);
    for (auto _ : state) {
        std::unique_lock<std::mutex> hold(lock);
        turn = 1;
        asked.notify_one();
        answered.wait(hold, [&] { return turn == 2; });
        turn = 0;
    }
    {
        std::lock_guard<std::mutex> hold(lock);
        turn = -1;
        asked.notify_one();
    }
    partner.join();
}

// ---- processes ------------------------------------------------------------

// A pre-forked process that answers each 8-octet request on its pipe with
// the same 8 octets, until end of file.
struct Echo {
    pid_t pid = -1;
    int to = -1, from = -1;

    bool start() {
        int req[2], rep[2];
        if (pipe(req) != 0)
            return false;
        if (pipe(rep) != 0) {
            close(req[0]);
            close(req[1]);
            return false;
        }
        pid = fork();
        if (pid == 0) {
            close(req[1]);
            close(rep[0]);
            uint64_t task;
            while (read(req[0], &task, sizeof task) == sizeof task)
                if (write(rep[1], &task, sizeof task) != sizeof task)
                    _exit(1);
            _exit(0);
        }
        close(req[0]);
        close(rep[1]);
        to = req[1];
        from = rep[0];
        return pid > 0;
    }

    // Closes this side's pipes: the process ends at end of file, once no
    // later fork holds a copy of its request pipe either.
    void close_pipes() {
        if (to >= 0)
            close(to);
        if (from >= 0)
            close(from);
        to = from = -1;
    }

    void reap() {
        if (pid > 0)
            waitpid(pid, nullptr, 0);
        pid = -1;
    }

    void stop() {
        close_pipes();
        reap();
    }
};

void pipe_round_trip(benchmark::State &state) {
    Echo echo;
    if (!echo.start()) {
        echo.stop();
        state.SkipWithError("could not start the echo process");
        return;
    }
    for (auto _ : state) {
        uint64_t word = 1;
        if (write(echo.to, &word, sizeof word) != sizeof word ||
            read(echo.from, &word, sizeof word) != sizeof word) {
            state.SkipWithError("the echo process failed");
            break;
        }
    }
    echo.stop();
}

// The pipe pool: requests are task numbers, each sent, and answered, with
// a write of its own, as tasks submitted one by one would be; the answer
// to task i fills result slot i. At most WINDOW requests are in flight per
// worker, so a write never blocks on a full pipe.
constexpr size_t WINDOW = 256;

class PipePool {
  public:
    explicit PipePool(size_t workers) : workers_(workers) {}
    // Every pipe first: a worker forked later holds copies of the earlier
    // ones' pipes until it ends.
    ~PipePool() {
        for (Echo &e : workers_)
            e.close_pipes();
        for (Echo &e : workers_)
            e.reap();
    }

    bool start() {
        for (Echo &e : workers_)
            if (!e.start())
                return false;
        return true;
    }

    // Runs tasks 0..n-1, task i on worker i % workers; true if every slot
    // got its answer.
    bool run(std::vector<uint64_t> &slots) {
        const size_t n = slots.size(), w = workers_.size();
        std::vector<size_t> next(w), in_flight(w, 0);
        std::vector<pollfd> fds(w);
        for (size_t i = 0; i < w; i++)
            next[i] = i;
        size_t done = 0;
        while (done < n) {
            for (size_t i = 0; i < w; i++) {
                for (; next[i] < n && in_flight[i] < WINDOW; next[i] += w) {
                    uint64_t task = next[i];
                    if (write(workers_[i].to, &task, sizeof task) !=
                        sizeof task)
                        return false;
                    in_flight[i]++;
                }
                fds[i] = {workers_[i].from,
                          static_cast<short>(in_flight[i] ? POLLIN : 0), 0};
            }
            if (poll(fds.data(), w, -1) < 0)
                return false;
            for (size_t i = 0; i < w; i++) {
                if (!(fds[i].revents & POLLIN))
                    continue;
                uint64_t answers[WINDOW];
                ssize_t r = read(workers_[i].from, answers, sizeof answers);
                if (r <= 0 || r % 8)
                    return false; // writes of 8 octets on a pipe are atomic
                for (ssize_t j = 0; j < r / 8; j++)
                    slots[answers[j]] = answers[j] + 1;
                in_flight[i] -= static_cast<size_t>(r / 8);
                done += static_cast<size_t>(r / 8);
            }
        }
        for (size_t i = 0; i < n; i++)
            if (slots[i] != i + 1)
                return false;
        return true;
    }

  private:
    std::vector<Echo> workers_;
};

void pipe_pool(benchmark::State &state, size_t workers, size_t tasks) {
    PipePool pool(workers);
    if (!pool.start()) {
        state.SkipWithError("could not start the workers");
        return;
    }
    std::vector<uint64_t> slots(tasks);
    for (auto _ : state) {
        std::fill(slots.begin(), slots.end(), 0);
        if (!pool.run(slots)) {
            state.SkipWithError("a worker failed");
            break;
        }
    }
    if (tasks > 1)
        state.SetItemsProcessed(
            static_cast<int64_t>(state.iterations() * tasks));
}

void bare_sleep(benchmark::State &state) {
    const struct timespec ten_ms = {0, 10000000};
    for (auto _ : state)
        nanosleep(&ten_ms, nullptr);
}

} // namespace

int main(int argc, char **argv) {
    for (bool cross : {false, true}) {
        const char *cpus = cross ? "cpus:cross" : "cpus:any";
        benchmark::RegisterBenchmark(
            (std::string("RoundTrip/futex/threads:2/") + cpus).c_str(),
            futex_ping_pong, cross)
            ->UseRealTime();
        benchmark::RegisterBenchmark(
            (std::string("RoundTrip/condvar/threads:2/") + cpus).c_str(),
            condvar_ping_pong, cross)
            ->UseRealTime();
    }
    benchmark::RegisterBenchmark("RoundTrip/pipe/processes:2", pipe_round_trip)
        ->UseRealTime();
    benchmark::RegisterBenchmark("RoundTrip/pipe-pool/workers:1", pipe_pool,
                                 size_t{1}, size_t{1})
        ->UseRealTime();
    for (size_t workers : {1, 2})
        benchmark::RegisterBenchmark(("Batch/pipe-pool/workers:" +
                                      std::to_string(workers) + "/tasks:10000")
                                         .c_str(),
                                     pipe_pool, workers, size_t{10000})
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("Sleep/nanosleep/ms:10", bare_sleep)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    return bench::run_main(argc, argv);
}
