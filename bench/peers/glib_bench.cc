// glib_bench -- GLib's GThreadPool on the overhead workloads (names:
// ../README.md): RoundTrip/glib/workers:1, Batch/glib/workers:N/tasks:T
// and .../no_future, in real time.
//
// The pool is exclusive (g_thread_pool_new(..., exclusive=TRUE)): its N
// threads start at once and stay, as a cfutures pool's workers do. GLib
// has no futures; a job's "future" is the completion GLib code would
// write, a GMutex, a GCond and a flag, which the submitter waits on. A
// GThreadPool runs one function on every pushed pointer, so each job is
// an object whose run() the pool's function calls.
#include "peer_common.hh"

#include <glib.h>

#include <memory>

namespace {

struct Job {
    virtual void run() = 0;

  protected:
    ~Job() = default;
};

void run_job(gpointer job, gpointer) {
    static_cast<Job *>(job)->run();
}

// A future: set by the job, waited on by the submitter.
class Completion final : public Job {
  public:
    Completion() {
        g_mutex_init(&lock_);
        g_cond_init(&cond_);
    }
    ~Completion() {
        g_cond_clear(&cond_);
        g_mutex_clear(&lock_);
    }
    Completion(const Completion &) = delete;
    Completion &operator=(const Completion &) = delete;

    void reset() {
        done_ = false;
    }
    void run() override {
        g_mutex_lock(&lock_);
        done_ = true;
        g_cond_signal(&cond_);
        g_mutex_unlock(&lock_);
    }
    void wait() {
        g_mutex_lock(&lock_);
        while (!done_)
            g_cond_wait(&cond_, &lock_);
        g_mutex_unlock(&lock_);
    }

  private:
    GMutex lock_;
    GCond cond_;
    bool done_ = false;
};

struct CountDown final : Job {
    peers::Latch latch;
    void run() override {
        latch.count_down();
    }
};

struct Meet final : Job {
    explicit Meet(int n) : rendezvous(n) {}
    peers::Rendezvous rendezvous;
    void run() override {
        rendezvous.arrive();
    }
};

// An exclusive pool of `workers` threads, warmed up (the benchmark skipped
// on failure); freed, after its jobs, when this goes: declare it after the
// jobs it runs.
class Pool {
  public:
    Pool(benchmark::State &state, int workers) {
        GError *error = nullptr;
        pool_ = g_thread_pool_new(run_job, nullptr, workers, TRUE, &error);
        if (!pool_) {
            state.SkipWithError(error->message);
            g_error_free(error);
            return;
        }
        Meet meet(workers);
        bool pushed = true;
        for (int i = 0; i < workers && pushed; i++)
            pushed = push(&meet);
        if (!pushed || !meet.rendezvous.met()) {
            state.SkipWithError("the workers did not all start");
            free();
        }
    }
    ~Pool() {
        free();
    }
    Pool(const Pool &) = delete;
    Pool &operator=(const Pool &) = delete;

    bool push(Job *job) {
        return g_thread_pool_push(pool_, job, nullptr);
    }

  private:
    void free() {
        if (pool_)
            g_thread_pool_free(pool_, FALSE, TRUE);
        pool_ = nullptr;
    }
    GThreadPool *pool_ = nullptr;
};

void round_trip(benchmark::State &state) {
    Completion done;
    Pool pool(state, 1);
    for (auto _ : state) {
        done.reset();
        if (!pool.push(&done)) {
            state.SkipWithError("g_thread_pool_push failed");
            break;
        }
        done.wait();
    }
}

void batch(benchmark::State &state, int workers, int tasks) {
    std::unique_ptr<Completion[]> done(new Completion[tasks]);
    Pool pool(state, workers);
    for (auto _ : state) {
        int n = 0;
        for (; n < tasks; n++) {
            done[n].reset();
            if (!pool.push(&done[n]))
                break;
        }
        for (int i = 0; i < n; i++)
            done[i].wait();
        if (n < tasks) {
            state.SkipWithError("g_thread_pool_push failed");
            break;
        }
    }
}

void batch_no_future(benchmark::State &state, int workers, int tasks) {
    CountDown job;
    Pool pool(state, workers);
    for (auto _ : state) {
        job.latch.reset(tasks);
        int n = 0;
        while (n < tasks && pool.push(&job))
            n++;
        if (n < tasks) {
            state.SkipWithError("g_thread_pool_push failed");
            break;
        }
        job.latch.wait();
    }
}

} // namespace

int main(int argc, char **argv) {
    peers::register_peer("glib", round_trip, batch, batch_no_future);
    return bench::run_main(argc, argv);
}
