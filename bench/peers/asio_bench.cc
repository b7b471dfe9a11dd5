// asio_bench -- Boost.Asio's thread_pool on the overhead workloads (names:
// ../README.md): RoundTrip/asio/workers:1, Batch/asio/workers:N/tasks:T
// and .../no_future, in real time.
//
// boost::asio::thread_pool(N) starts its N threads at once; jobs go in
// with boost::asio::post. A job's future is Asio's own:
// post(pool, use_future(job)) returns a std::future<void> that the job
// fulfils (a std::promise inside Asio's handler).
#include "peer_common.hh"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>

#include <future>
#include <vector>

namespace {

void noop() {}

// A thread pool of `workers`, warmed up (the benchmark skipped if they did
// not all start); stopped and joined, after its jobs, when this goes.
class Pool {
  public:
    Pool(benchmark::State &state, int workers) : pool_(workers) {
        peers::Rendezvous meet(workers);
        for (int i = 0; i < workers; i++)
            boost::asio::post(pool_, [&meet] { meet.arrive(); });
        if (!meet.met())
            state.SkipWithError("the workers did not all start");
    }
    ~Pool() {
        pool_.join();
    }
    Pool(const Pool &) = delete;
    Pool &operator=(const Pool &) = delete;

    std::future<void> submit() {
        return boost::asio::post(pool_, boost::asio::use_future(noop));
    }
    template <class F> void post(F &&job) {
        boost::asio::post(pool_, std::forward<F>(job));
    }

  private:
    boost::asio::thread_pool pool_;
};

void round_trip(benchmark::State &state) {
    Pool pool(state, 1);
    for (auto _ : state)
        pool.submit().get();
}

void batch(benchmark::State &state, int workers, int tasks) {
    Pool pool(state, workers);
    std::vector<std::future<void>> done(tasks);
    for (auto _ : state) {
        for (std::future<void> &f : done)
            f = pool.submit();
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
            pool.post([&latch] { latch.count_down(); });
        latch.wait();
    }
}

} // namespace

int main(int argc, char **argv) {
    peers::register_peer("asio", round_trip, batch, batch_no_future);
    return bench::run_main(argc, argv);
}
