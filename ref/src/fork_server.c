/*
 * fork_server.c -- the fork server process, and the manager's start and
 * stop of it.
 *
 * Runs in: the fork server, a single-threaded process the manager thread
 * forks as it starts (so the server's PR_SET_PDEATHSIG follows the manager
 * thread, which outlives every use of it). The server closes every
 * inherited descriptor but its socket to the parent, then on each request
 * ("S") makes a socketpair, forks a worker and passes the parent's end
 * back with SCM_RIGHTS and the pid. It learns of exits through a pidfd per
 * worker (Linux 5.3), reaps its children and reports each exit. Asked to
 * ("T", "K"), it sends SIGTERM or SIGKILL to every worker it has, and to
 * every one it forks afterwards. Asked to quit ("Q"), or at EOF on its
 * socket, it kills (SIGKILL) and reaps what is left and exits. It first moves
 * to a stack of its own, of the default thread size (server_start), which its
 * workers inherit. cf__pp_start_server and cf__pp_stop_server, at the end of
 * this file, run in the manager thread instead: they are here because they are
 * the other end of the server's life.
 *
 * Owns: CHILD_FD, its socket to the parent; a pidfd per worker; each new
 * socketpair until the parent's end is passed and the worker's end is the
 * worker's. It takes none of the pool's locks: its struct process_pool is
 * the copy fork made of the manager's, read only to hand to its workers.
 * On the manager's side, start and stop own server_pid and server_fd
 * (the manager thread's own; cf__pp_stop_server runs with io_lock held).
 */
#define _GNU_SOURCE
#include "process_pool.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define CF_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CF_ASAN 1
#endif
#endif
#ifdef CF_ASAN
/* <sanitizer/common_interface_defs.h>: tells AddressSanitizer which stack
 * the thread runs on. */
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom,
                                    size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save,
                                     const void **bottom_old,
                                     size_t *size_old);
#endif

/* The server's children, each with a pidfd that polls readable once it
 * has exited (no SIGCHLD handler: ThreadSanitizer defers signal handlers,
 * and a poll would never hear of the exit). */
struct server {
    pid_t self;
    pid_t *pids;
    struct pollfd *pfds; /* [0]: the parent's socket; [1 + i]: pids[i] */
    size_t npids, cap;
    int force; /* ASK_TERM / ASK_KILL: the signal for every worker, or 0 */
};

/* Sends sig to every child not reaped yet (a zombie's pid is still its). */
static void server_signal_all(struct server *s, int sig) {
    s->force = sig;
    for (size_t i = 0; i < s->npids; i++)
        kill(s->pids[i], sig);
}

static void server_send(int kind, pid_t pid, int info, int pass_fd) {
    struct server_msg m = {kind, pid, info};
    struct iovec iov = {&m, sizeof m};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (pass_fd >= 0) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof control.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    while (sendmsg(CHILD_FD, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR)
        ; /* failure: the parent is gone, and EOF will tell */
}

static void server_spawn(const struct process_pool *p, struct server *s) {
    int sv[2];
    if (s->npids == s->cap) {
        size_t cap = s->cap * 2;
        pid_t *pids = realloc(s->pids, cap * sizeof *pids);
        if (pids)
            s->pids = pids;
        struct pollfd *pfds =
            pids ? realloc(s->pfds, (cap + 1) * sizeof *pfds) : NULL;
        if (!pfds) {
            server_send(MSG_SPAWN_FAILED, 0, ENOMEM, -1);
            return;
        }
        s->pfds = pfds;
        s->cap = cap;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
        server_send(MSG_SPAWN_FAILED, 0, errno, -1);
        return;
    }
    pid_t pid = fork();
    if (pid == 0)
        cf__pp_worker_main(p, sv[1], s->self);
    int err = errno;
    close(sv[1]);
    int pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
    if (pid > 0 && pidfd < 0) {
        err = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        pid = -1;
    }
    if (pid < 0) {
        server_send(MSG_SPAWN_FAILED, 0, err, -1);
    } else {
        s->pids[s->npids] = pid;
        s->pfds[1 + s->npids++] = (struct pollfd){pidfd, POLLIN, 0};
        if (s->force) /* asked for before the workers were signalled */
            kill(pid, s->force);
        server_send(MSG_SPAWNED, pid, 0, sv[0]);
    }
    close(sv[0]);
}

/* Reaps and reports the child at index i, whose pidfd is readable. */
static void server_reap(struct server *s, size_t i) {
    int status = 0;
    pid_t pid = s->pids[i], got;
    while ((got = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    close(s->pfds[1 + i].fd);
    s->npids--;
    s->pids[i] = s->pids[s->npids];
    s->pfds[1 + i] = s->pfds[1 + s->npids];
    server_send(got == pid ? MSG_EXITED : MSG_EXIT_UNREAD, pid, status, -1);
}

static _Noreturn void server_main(const struct process_pool *p, int fd,
                                  pid_t parent) {
    struct server s = {getpid(), NULL, NULL, 0, 8, 0};
    sigset_t none;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(0);
    cf__pp_keep_only(fd);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* A program that ignores SIGCHLD would have the workers reaped by the
     * kernel, and their wait statuses lost. */
    signal(SIGCHLD, SIG_DFL);
    s.pids = malloc(s.cap * sizeof *s.pids);
    s.pfds = malloc((s.cap + 1) * sizeof *s.pfds);
    if (!s.pids || !s.pfds)
        _exit(1);
    s.pfds[0] = (struct pollfd){CHILD_FD, POLLIN, 0};
    for (;;) {
        char c;
        if (poll(s.pfds, 1 + s.npids, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (size_t i = s.npids; i-- > 0;)
            if (s.pfds[1 + i].revents)
                server_reap(&s, i);
        if (s.pfds[0].revents) {
            ssize_t n = read(CHILD_FD, &c, 1);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0 || c == ASK_QUIT)
                break; /* the parent shut down, or died */
            if (c == ASK_SPAWN)
                server_spawn(p, &s);
            else if (c == ASK_TERM || c == ASK_KILL)
                server_signal_all(&s, c == ASK_TERM ? SIGTERM : SIGKILL);
        }
    }
    for (size_t i = 0; i < s.npids; i++)
        kill(s.pids[i], SIGKILL);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    _exit(0);
}

/*
 * The server's stack. It is forked from the manager thread, so it starts
 * on (its copy of) that thread's stack, which is small (process_pool.c,
 * MANAGER_STACK), and so would every worker and the tasks they run. So it
 * moves at once, for good, to a new stack of the size a new thread gets by
 * default (the size the manager thread's had before it was made small, so
 * tasks keep the stack they had), with a guard page below: only the server
 * and its workers map it, so it adds nothing to the parent's forks.
 * makecontext passes only ints, so the arguments wait here (in the
 * server's own copy of this memory).
 */
static struct {
    const struct process_pool *pool;
    int fd;
    pid_t parent;
} server_args;

static void server_entry(void) {
#ifdef CF_ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    server_main(server_args.pool, server_args.fd, server_args.parent);
}

static _Noreturn void server_start(const struct process_pool *p, int fd,
                                   pid_t parent) {
    pthread_attr_t attr;
    size_t size = 0, guard = (size_t)sysconf(_SC_PAGESIZE);
    ucontext_t uc;
    if (pthread_getattr_default_np(&attr) == 0) {
        if (pthread_attr_getstacksize(&attr, &size))
            size = 0;
        pthread_attr_destroy(&attr);
    }
    size = (size + guard - 1) / guard * guard;
    char *stack = size ? mmap(NULL, guard + size, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0)
                       : MAP_FAILED;
    if (stack != MAP_FAILED &&
        (mprotect(stack, guard, PROT_NONE) || getcontext(&uc))) {
        munmap(stack, guard + size);
        stack = MAP_FAILED;
    }
    if (stack != MAP_FAILED) {
        server_args.pool = p;
        server_args.fd = fd;
        server_args.parent = parent;
        uc.uc_stack.ss_sp = stack + guard;
        uc.uc_stack.ss_size = size;
        uc.uc_link = NULL;
        makecontext(&uc, server_entry, 0);
#ifdef CF_ASAN
        __sanitizer_start_switch_fiber(NULL, stack + guard, size);
#endif
        setcontext(&uc); /* does not return: uc is sound */
    }
    server_main(p, fd, parent); /* on the small stack, then */
}

cf_status cf__pp_start_server(struct process_pool *p) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return CF_EAGAIN;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        server_start(p, sv[1], parent);
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        return CF_EAGAIN;
    }
    p->server_pid = pid;
    p->server_fd = sv[0];
    return CF_OK;
}

void cf__pp_stop_server(struct process_pool *p) {
    char quit = ASK_QUIT;
    if (p->server_fd < 0)
        return;
    cf__pp_write_all(p->server_fd, &quit, 1); /* failed: it is gone */
    close(p->server_fd);
    p->server_fd = -1;
    while (waitpid(p->server_pid, NULL, 0) < 0 && errno == EINTR)
        ;
}
