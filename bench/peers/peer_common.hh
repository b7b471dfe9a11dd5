// peer_common.hh -- what the peer programs share: the benchmark names, the
// warm-up that proves every worker has started, and the latch of the
// no_future batches.
#ifndef CF_BENCH_PEER_COMMON_HH
#define CF_BENCH_PEER_COMMON_HH

#include "common.hh"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>

namespace peers {

// The warm-up: `n` jobs, each held until all `n` run at once, so that `n`
// workers have started (a job gives up after five seconds, and the
// warm-up fails).
class Rendezvous {
  public:
    explicit Rendezvous(int n) : n_(n) {}

    // A job's body.
    void arrive() {
        std::unique_lock<std::mutex> hold(lock_);
        arrived_++;
        cond_.notify_all();
        if (!cond_.wait_for(hold, std::chrono::seconds(5),
                            [this] { return arrived_ >= n_; }))
            missed_ = true;
        left_++;
        cond_.notify_all();
    }

    // Waits until every job has left; true if they all met.
    bool met() {
        std::unique_lock<std::mutex> hold(lock_);
        cond_.wait(hold, [this] { return left_ == n_; });
        return !missed_;
    }

  private:
    const int n_;
    int arrived_ = 0, left_ = 0;
    bool missed_ = false;
    std::mutex lock_;
    std::condition_variable cond_;
};

// One completion for a whole batch: each job counts down, the last one
// wakes the waiter.
class Latch {
  public:
    void reset(int n) {
        left_.store(n, std::memory_order_relaxed);
        done_ = false;
    }

    void count_down() {
        if (left_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            std::lock_guard<std::mutex> hold(lock_);
            done_ = true;
            cond_.notify_one();
        }
    }

    void wait() {
        std::unique_lock<std::mutex> hold(lock_);
        cond_.wait(hold, [this] { return done_; });
    }

  private:
    std::atomic<int> left_{0};
    bool done_ = false;
    std::mutex lock_;
    std::condition_variable cond_;
};

using RoundTrip = void (*)(benchmark::State &);
using Batch = void (*)(benchmark::State &, int workers, int tasks);

// Registers RoundTrip/<peer>/workers:1 and, for N in {1, 2} and T = 10 000,
// Batch/<peer>/workers:N/tasks:T (a future per job) and the same name with
// /no_future (`no_future`: one latch for the batch). A Batch function runs
// the timing loop; the items processed (tasks/s) are set here.
inline void register_peer(const char *peer, RoundTrip round_trip,
                          Batch with_futures, Batch no_future) {
    const std::string p(peer);
    benchmark::RegisterBenchmark(("RoundTrip/" + p + "/workers:1").c_str(),
                                 round_trip)
        ->UseRealTime();
    const int tasks = 10000;
    for (int workers : {1, 2})
        for (auto [batch, suffix] :
             {std::pair{with_futures, ""}, std::pair{no_future, "/no_future"}})
            benchmark::RegisterBenchmark(
                ("Batch/" + p + "/workers:" + std::to_string(workers) +
                 "/tasks:" + std::to_string(tasks) + suffix)
                    .c_str(),
                [batch = batch, workers, tasks](benchmark::State &state) {
                    batch(state, workers, tasks);
                    state.SetItemsProcessed(state.iterations() * tasks);
                })
                ->UseRealTime()
                ->Unit(benchmark::kMillisecond);
}

} // namespace peers

#endif
