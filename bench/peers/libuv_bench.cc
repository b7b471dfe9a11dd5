// libuv_bench -- libuv's thread pool (uv_queue_work) on the overhead
// workloads (names: ../README.md): RoundTrip/libuv/workers:1,
// Batch/libuv/workers:N/tasks:T and .../no_future, in real time.
//
// A job is a uv_work_t queued from the loop's thread, the submitter; its
// after_work callback runs on that thread when the loop reaps the job.
// That callback is the job's "future": it marks the job done, and the
// submitter runs the loop until it has. A no_future job has no after_work
// callback: uv_run(UV_RUN_DEFAULT) returns once the loop has reaped every
// job, which is libuv's own way of knowing that they all ran.
//
// libuv has one pool per process, whose size (UV_THREADPOOL_SIZE) is read
// once, when it starts. This process's pool has one thread; a batch on
// another number of workers runs in a child process forked for it, in
// which libuv starts a pool afresh, and the parent times each batch
// through a pipe (an octet there, an octet back: microseconds on a batch
// of milliseconds).
#include "peer_common.hh"

#include <uv.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

const int own_workers = 1;

// A loop on the calling thread, closed when this goes.
class Loop {
  public:
    Loop() : ok_(uv_loop_init(&loop_) == 0) {}
    ~Loop() {
        if (ok_)
            uv_loop_close(&loop_);
    }
    Loop(const Loop &) = delete;
    Loop &operator=(const Loop &) = delete;

    bool ok() const {
        return ok_;
    }
    uv_loop_t *get() {
        return &loop_;
    }

  private:
    uv_loop_t loop_;
    const bool ok_;
};

void arrive(uv_work_t *req) {
    static_cast<peers::Rendezvous *>(req->data)->arrive();
}

// True if `workers` jobs ran at once in the pool.
bool warm_up(uv_loop_t *loop, int workers) {
    peers::Rendezvous meet(workers);
    std::vector<uv_work_t> reqs(workers);
    int n = 0;
    for (; n < workers; n++) {
        reqs[n].data = &meet;
        if (uv_queue_work(loop, &reqs[n], arrive, nullptr) != 0)
            break;
    }
    uv_run(loop, UV_RUN_DEFAULT);
    return n == workers && meet.met();
}

struct Job {
    uv_work_t req;
    bool done;
};

void noop(uv_work_t *) {}

void mark_done(uv_work_t *req, int) {
    static_cast<Job *>(req->data)->done = true;
}

// One batch: each job with its after_work "future", waited on in turn.
class WithFutures {
  public:
    explicit WithFutures(int tasks) : jobs_(tasks) {
        for (Job &job : jobs_)
            job.req.data = &job;
    }
    bool run(uv_loop_t *loop) {
        size_t n = 0;
        for (; n < jobs_.size(); n++) {
            jobs_[n].done = false;
            if (uv_queue_work(loop, &jobs_[n].req, noop, mark_done) != 0)
                break;
        }
        for (size_t i = 0; i < n; i++)
            while (!jobs_[i].done)
                uv_run(loop, UV_RUN_ONCE);
        return n == jobs_.size();
    }

  private:
    std::vector<Job> jobs_;
};

void count(uv_work_t *req) {
    static_cast<std::atomic<size_t> *>(req->data)->fetch_add(
        1, std::memory_order_relaxed);
}

// One batch: jobs without after_work, each counting itself; the loop runs
// until it has reaped them all.
class NoFuture {
  public:
    explicit NoFuture(int tasks) : reqs_(tasks) {
        for (uv_work_t &req : reqs_)
            req.data = &ran_;
    }
    bool run(uv_loop_t *loop) {
        ran_.store(0, std::memory_order_relaxed);
        size_t n = 0;
        while (n < reqs_.size() &&
               uv_queue_work(loop, &reqs_[n], count, nullptr) == 0)
            n++;
        uv_run(loop, UV_RUN_DEFAULT);
        return n == reqs_.size() && ran_.load(std::memory_order_relaxed) == n;
    }

  private:
    std::vector<uv_work_t> reqs_;
    std::atomic<size_t> ran_{0};
};

// A child process with a pool of `workers` threads that runs one batch per
// octet it reads and answers each with an octet, 1 if the batch ran; its
// first octet says whether it started (its loop made, its pool warmed up).
class Child {
  public:
    template <class Batch> Child(int workers, Batch &batch) {
        int down[2], up[2];
        if (pipe(down) != 0)
            return;
        if (pipe(up) != 0) {
            close(down[0]);
            close(down[1]);
            return;
        }
        pid_ = fork();
        if (pid_ == 0) {
            close(down[1]);
            close(up[0]);
            serve(workers, batch, down[0], up[1]);
            _exit(0);
        }
        close(down[0]);
        close(up[1]);
        to_ = down[1];
        from_ = up[0];
        started_ = pid_ > 0 && answer();
    }
    ~Child() {
        if (to_ >= 0)
            close(to_);
        if (from_ >= 0)
            close(from_);
        if (pid_ > 0)
            waitpid(pid_, nullptr, 0);
    }
    Child(const Child &) = delete;
    Child &operator=(const Child &) = delete;

    bool started() const {
        return started_;
    }
    // Runs one batch in the child; true if it ran.
    bool run() {
        const char go = 1;
        return write(to_, &go, 1) == 1 && answer();
    }

  private:
    template <class Batch>
    static void serve(int workers, Batch &batch, int in, int out) {
        setenv("UV_THREADPOOL_SIZE", std::to_string(workers).c_str(), 1);
        Loop loop;
        char c = loop.ok() && warm_up(loop.get(), workers);
        bool ok = c;
        while (write(out, &c, 1) == 1 && ok && read(in, &c, 1) == 1)
            c = batch.run(loop.get());
    }
    bool answer() {
        char c;
        return read(from_, &c, 1) == 1 && c == 1;
    }

    pid_t pid_ = -1;
    int to_ = -1, from_ = -1;
    bool started_ = false;
};

// Times `batch` on a pool of `workers`: in this process if its pool has
// that size, else in a child.
template <class Batch>
void timed(benchmark::State &state, int workers, Batch batch) {
    if (workers == own_workers) {
        Loop loop;
        if (!loop.ok() || !warm_up(loop.get(), workers)) {
            state.SkipWithError("the loop or the pool did not start");
            return;
        }
        for (auto _ : state)
            if (!batch.run(loop.get())) {
                state.SkipWithError("a job could not be queued");
                break;
            }
        return;
    }
    Child child(workers, batch);
    if (!child.started()) {
        state.SkipWithError("the child's loop or pool did not start");
        return;
    }
    for (auto _ : state)
        if (!child.run()) {
            state.SkipWithError("a batch failed in the child");
            break;
        }
}

void round_trip(benchmark::State &state) {
    Loop loop;
    if (!loop.ok() || !warm_up(loop.get(), own_workers)) {
        state.SkipWithError("the loop or the pool did not start");
        return;
    }
    Job job;
    job.req.data = &job;
    for (auto _ : state) {
        job.done = false;
        if (uv_queue_work(loop.get(), &job.req, noop, mark_done) != 0) {
            state.SkipWithError("uv_queue_work failed");
            break;
        }
        while (!job.done)
            uv_run(loop.get(), UV_RUN_ONCE);
    }
}

void batch(benchmark::State &state, int workers, int tasks) {
    timed(state, workers, WithFutures(tasks));
}

void batch_no_future(benchmark::State &state, int workers, int tasks) {
    timed(state, workers, NoFuture(tasks));
}

} // namespace

int main(int argc, char **argv) {
    // Before libuv starts its pool, at the first job.
    setenv("UV_THREADPOOL_SIZE", std::to_string(own_workers).c_str(), 1);
    peers::register_peer("libuv", round_trip, batch, batch_no_future);
    return bench::run_main(argc, argv);
}
