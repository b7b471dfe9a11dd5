/*
 * process_io.c -- descriptor and stream helpers for more than one of the
 * process pool's rooms (see process_pool.h).
 *
 * Runs in: whoever calls it. cf__pp_write_all writes a worker's answers
 * (worker process) and the manager's requests to the server (manager
 * thread); cf__pp_keep_only runs in a child the fork just made (the fork
 * server, a worker); the streams are how a worker reads its task frames
 * and how the manager reads outcome frames and queues task frames.
 *
 * Owns: nothing. The descriptor and the stream are the caller's, and no
 * lock is taken here: a stream is guarded by whatever guards its owner
 * (io_lock for the manager's, nothing in a single-threaded worker).
 */
#define _GNU_SOURCE
#include "process_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

bool cf__pp_write_all(int fd, const void *data, size_t len) {
    const unsigned char *at = data;
    while (len) {
        ssize_t n = send(fd, at, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        at += n;
        len -= (size_t)n;
    }
    return true;
}

void cf__pp_keep_only(int fd) {
    if (fd != CHILD_FD && dup2(fd, CHILD_FD) < 0)
        _exit(1);
    /* dup2 drops close-on-exec: set it again, so that a program a task
     * starts does not hold the pool's socket open */
    if (fcntl(CHILD_FD, F_SETFD, FD_CLOEXEC) < 0)
        _exit(1);
    close_range(CHILD_FD + 1, ~0u, 0);
}

bool cf__pp_stream_reserve(struct stream *s, size_t room) {
    struct cf__buf *b = &s->buf;
    if (s->off) {
        memmove(b->data, b->data + s->off, b->len - s->off);
        b->len -= s->off;
        s->off = 0;
    }
    if (b->cap - b->len >= room)
        return true;
    if (room > SIZE_MAX - b->len)
        return false;
    unsigned char *data = realloc(b->data, b->len + room);
    if (!data)
        return false;
    b->data = data;
    b->cap = b->len + room;
    return true;
}

bool cf__pp_stream_frame(struct stream *s, const unsigned char **payload,
                         size_t *len, size_t *need) {
    size_t have = s->buf.len - s->off;
    *need = CF__FRAME_HEADER - have;
    if (have < CF__FRAME_HEADER)
        return false;
    uint32_t n = cf__frame_length(s->buf.data + s->off);
    if (have - CF__FRAME_HEADER < n) {
        *need = CF__FRAME_HEADER + (size_t)n - have;
        return false;
    }
    *payload = s->buf.data + s->off + CF__FRAME_HEADER;
    *len = n;
    s->off += CF__FRAME_HEADER + (size_t)n;
    return true;
}

ssize_t cf__pp_stream_read(struct stream *s, int fd, size_t need) {
    if (!cf__pp_stream_reserve(s, need > READ_CHUNK ? need : READ_CHUNK)) {
        errno = ENOMEM;
        return -1;
    }
    ssize_t n;
    while ((n = read(fd, s->buf.data + s->buf.len, s->buf.cap - s->buf.len)) <
               0 &&
           errno == EINTR)
        ;
    if (n > 0)
        s->buf.len += (size_t)n;
    return n;
}

void cf__pp_stream_free(struct stream *s) {
    cf__buf_free(&s->buf);
    s->off = 0;
}

void cf__pp_stream_trim(struct stream *s) {
    struct cf__buf *b = &s->buf;
    size_t left = b->len - s->off;
    if (b->cap <= LARGE_BUFFER || left > READ_CHUNK)
        return;
    if (!left) {
        cf__pp_stream_free(s);
        return;
    }
    unsigned char *data = malloc(READ_CHUNK);
    if (!data)
        return;
    memcpy(data, b->data + s->off, left);
    free(b->data);
    b->data = data;
    b->len = left;
    b->cap = READ_CHUNK;
    s->off = 0;
}
