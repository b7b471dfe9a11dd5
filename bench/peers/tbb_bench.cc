// tbb_bench -- oneTBB on the overhead workloads (names: ../README.md):
// RoundTrip/tbb/workers:1, Batch/tbb/workers:N/tasks:T and .../no_future,
// in real time.
//
// The pool is a tbb::task_arena of N slots, none kept for the submitting
// thread (task_arena(N, 0)), fed by task_arena::enqueue, which queues a
// job without the submitter joining the arena: it never runs jobs itself,
// as with a cfutures pool. TBB starts as many workers as the machine (or
// the affinity mask) has CPUs, less one; a tbb::global_control of N + 1
// lets it start N whatever the CPUs. TBB has no futures of its own: a job
// owns a std::promise<void> and the submitter waits on its std::future
// (the standard's completion; a hand-made one would be no cheaper than
// libstdc++'s, a futex word once made).
#include "peer_common.hh"

#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include <future>
#include <new>
#include <vector>

namespace {

// A job that fulfils its own promise. TBB calls a job as const and
// destroys it after the call, so the promise is mutable and goes with the
// job, never touched by the submitter once the job is queued.
struct Fulfil {
    mutable std::promise<void> done;
    void operator()() const {
        done.set_value();
    }
};

// An arena of `workers` slots, warmed up (the benchmark skipped if they
// did not all start). Jobs still queued are run before it goes.
class Pool {
  public:
    Pool(benchmark::State &state, int workers)
        : workers_(tbb::global_control::max_allowed_parallelism, workers + 1),
          arena_(workers, 0) {
        peers::Rendezvous meet(workers);
        for (int i = 0; i < workers; i++)
            arena_.enqueue([&meet] { meet.arrive(); });
        if (!meet.met())
            state.SkipWithError("the workers did not all start");
    }

    template <class F> void enqueue(F &&job) {
        arena_.enqueue(std::forward<F>(job));
    }

  private:
    tbb::global_control workers_;
    tbb::task_arena arena_;
};

void round_trip(benchmark::State &state) {
    Pool pool(state, 1);
    for (auto _ : state) {
        Fulfil job;
        std::future<void> done = job.done.get_future();
        pool.enqueue(std::move(job));
        done.get();
    }
}

void batch(benchmark::State &state, int workers, int tasks) {
    Pool pool(state, workers);
    std::vector<std::future<void>> done(tasks);
    for (auto _ : state) {
        for (std::future<void> &f : done) {
            Fulfil job;
            f = job.done.get_future();
            pool.enqueue(std::move(job));
        }
        for (std::future<void> &f : done)
            f.get();
    }
}

void batch_no_future(benchmark::State &state, int workers, int tasks) {
    peers::Latch latch;
    Pool pool(state, workers);
    for (auto _ : state) {
        latch.reset(tasks);
        for (int i = 0; i < tasks; i++)
            pool.enqueue([&latch] { latch.count_down(); });
        latch.wait();
    }
}

} // namespace

int main(int argc, char **argv) {
    // Kept until every TBB worker thread has been joined, at the end.
    tbb::task_scheduler_handle scheduler(tbb::attach{});
    peers::register_peer("tbb", round_trip, batch, batch_no_future);
    const int rc = bench::run_main(argc, argv);
    return tbb::finalize(scheduler, std::nothrow) ? rc : 1;
}
