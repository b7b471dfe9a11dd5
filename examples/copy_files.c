/*
 * copy_files.c -- the `with` example of Executor.shutdown in the
 * concurrent.futures documentation (Python 3.2, section 16.4.1):
 *
 *     import shutil
 *     with ThreadPoolExecutor(max_workers=4) as e:
 *         e.submit(shutil.copy, 'src1.txt', 'dest1.txt')
 *         e.submit(shutil.copy, 'src2.txt', 'dest2.txt')
 *         e.submit(shutil.copy, 'src3.txt', 'dest3.txt')
 *         e.submit(shutil.copy, 'src3.txt', 'dest4.txt')
 *
 * It shows that the end of a `with` block is a shutdown that waits: the
 * block is cf_thread_pool_new ... cf_executor_free, and once
 * cf_executor_free returns every copy is finished, without the program ever
 * asking a future for its result.
 *
 * The program makes src1.txt, src2.txt and src3.txt in a private folder
 * (mkdtemp), runs the four copies, checks every copy byte for byte (and its
 * permission bits, which shutil.copy copies too), then removes the folder.
 * Python's example drops its futures, so a failed copy would go unnoticed;
 * this one keeps them and checks each returned the destination's name, as
 * shutil.copy does. It exits non-zero if anything is wrong.
 */
#define _POSIX_C_SOURCE 200809L

#include "cfutures.h"
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A source file: its name, permission bits and contents, made by
 * make_contents(). */
struct source {
    const char *name;
    mode_t mode;
    size_t len;
    unsigned char *data;
};

/* src3.txt is larger than one read, so copy_file loops. */
static struct source SOURCES[] = {
    {"src1.txt", 0644, 1000, NULL},
    {"src2.txt", 0600, 1024, NULL},
    {"src3.txt", 0640, 300000, NULL},
};
#define NSOURCES (sizeof SOURCES / sizeof SOURCES[0])

/* The docs' four calls: source index, destination name. */
static const struct {
    size_t source;
    const char *dest;
} COPIES[] = {
    {0, "dest1.txt"}, {1, "dest2.txt"}, {2, "dest3.txt"}, {2, "dest4.txt"}};
#define NCOPIES (sizeof COPIES / sizeof COPIES[0])

/* ---- The task: shutil.copy(src, dst) ------------------------------------ */

/* Writes all len octets of data to fd. Returns 0 or an errno value. */
static int write_all(int fd, const unsigned char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Copies the bytes of in to out. Returns 0 or an errno value; *failed_in
 * says whether reading (true) or writing failed. */
static int copy_bytes(int in, int out, bool *failed_in) {
    unsigned char buf[65536];
    ssize_t n;
    int err;

    for (;;) {
        n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *failed_in = true;
            return errno;
        }
        if (n == 0)
            return 0;
        err = write_all(out, buf, (size_t)n);
        if (err != 0) {
            *failed_in = false;
            return err;
        }
    }
}

/*
 * shutil.copy(src, dst): copies the data and the permission bits of src to
 * dst and returns dst. Raises the OSError subclass Python raises.
 */
static void copy(cf_call *call) {
    const cf_value *src = cf_arg(call, 0), *dst = cf_arg(call, 1);
    const cf_value *failed = src;
    bool failed_in = true;
    struct stat st;
    cf_value dest;
    int in, out, err = 0;

    if (cf_nargs(call) != 2 || src->type != CF_TYPE_STR ||
        dst->type != CF_TYPE_STR) {
        cf_raise(call, "TypeError", "copy() takes two str paths");
        return;
    }
    in = open(src->as.buf.data, O_RDONLY | O_CLOEXEC);
    if (in < 0 || fstat(in, &st) != 0) {
        err = errno;
        failed = src;
        goto out_close_in;
    }
    out =
        open(dst->as.buf.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (out < 0) {
        err = errno;
        failed = dst;
        goto out_close_in;
    }
    err = copy_bytes(in, out, &failed_in);
    failed = failed_in ? src : dst;
    if (err == 0 && fchmod(out, st.st_mode & 07777) != 0) {
        err = errno;
        failed = dst;
    }
    if (close(out) != 0 && err == 0) {
        err = errno;
        failed = dst;
    }
out_close_in:
    if (in >= 0)
        close(in);
    if (err != 0) {
        example_raise_oserror(call, err, failed);
        return;
    }
    if (cf_value_copy(&dest, dst) == CF_OK)
        cf_return(call, dest);
    else
        cf_raise(call, "MemoryError", "copying the destination's name");
}

/* ---- The program around it --------------------------------------------- */

/* Fills every source's contents: text, every byte value (NUL included), and
 * pseudo-random bytes. Returns false when out of memory. */
static bool make_contents(void) {
    uint32_t x = 12345;

    for (size_t i = 0; i < NSOURCES; i++) {
        SOURCES[i].data = malloc(SOURCES[i].len);
        if (SOURCES[i].data == NULL)
            return false;
    }
    for (size_t j = 0; j < SOURCES[0].len; j++)
        SOURCES[0].data[j] = (unsigned char)("line of src1.txt\n"[j % 17]);
    for (size_t j = 0; j < SOURCES[1].len; j++)
        SOURCES[1].data[j] = (unsigned char)(j % 256);
    for (size_t j = 0; j < SOURCES[2].len; j++) {
        x = x * 1103515245u + 12345u;
        SOURCES[2].data[j] = (unsigned char)(x >> 24);
    }
    return true;
}

static void free_contents(void) {
    for (size_t i = 0; i < NSOURCES; i++) {
        free(SOURCES[i].data);
        SOURCES[i].data = NULL;
    }
}

/* Writes data to path with the given permission bits. */
static bool write_file(const char *path, const unsigned char *data, size_t len,
                       mode_t mode) {
    int fd, err;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(path);
        return false;
    }
    err = write_all(fd, data, len);
    if (err == 0 && fchmod(fd, mode) != 0)
        err = errno;
    if (close(fd) != 0 && err == 0)
        err = errno;
    if (err != 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(err));
        return false;
    }
    return true;
}

static bool write_sources(const char *dir) {
    char path[EXAMPLE_PATH_SIZE];

    for (size_t i = 0; i < NSOURCES; i++) {
        if (!example_join(path, dir, SOURCES[i].name) ||
            !write_file(path, SOURCES[i].data, SOURCES[i].len,
                        SOURCES[i].mode))
            return false;
    }
    return true;
}

/* e.submit(shutil.copy, src, dest) for each of the docs' four calls.
 * Stops at the first failure; futures[] gets what was submitted. */
static bool submit_copies(cf_executor *e, const char *dir,
                          cf_future *futures[NCOPIES]) {
    char src[EXAMPLE_PATH_SIZE], dest[EXAMPLE_PATH_SIZE];
    cf_value args[2] = {cf_none(), cf_none()};
    cf_status st = CF_OK;

    for (size_t i = 0; i < NCOPIES && st == CF_OK; i++) {
        if (!example_join(src, dir, SOURCES[COPIES[i].source].name) ||
            !example_join(dest, dir, COPIES[i].dest))
            return false;
        st = cf_value_str(&args[0], src);
        if (st == CF_OK)
            st = cf_value_str(&args[1], dest);
        if (st == CF_OK)
            st = cf_submit(e, copy, args, 2, &futures[i]);
        cf_value_free(&args[0]);
        cf_value_free(&args[1]);
    }
    return example_ok(st, "submitting a copy");
}

/* The future of copy i returned dir/dest, as shutil.copy returns dst. It is
 * done already: the with block waited. */
static bool check_future(cf_future *future, const char *dir, size_t i) {
    char dest[EXAMPLE_PATH_SIZE];
    const cf_error *error = NULL;
    cf_value result = cf_none();
    cf_status st;
    bool ok;

    if (!cf_future_done(future)) {
        fprintf(stderr, "copy to %s not done after the with block\n",
                COPIES[i].dest);
        return false;
    }
    st = cf_future_result(future, 0, &result);
    if (st != CF_OK) {
        cf_future_exception(future, 0, &error);
        fprintf(stderr, "copy to %s: %s %s: %s\n", COPIES[i].dest,
                cf_status_name(st), cf_error_type(error),
                cf_error_message(error));
        return false;
    }
    ok = example_join(dest, dir, COPIES[i].dest) &&
         result.type == CF_TYPE_STR && strcmp(result.as.buf.data, dest) == 0;
    if (!ok)
        fprintf(stderr, "copy to %s did not return its path\n",
                COPIES[i].dest);
    cf_value_free(&result);
    return ok;
}

/* Compares the file at path with want, byte for byte. */
static bool same_bytes(const char *path, const unsigned char *want,
                       size_t len) {
    unsigned char buf[65536];
    size_t at = 0, n;
    bool same = true;
    FILE *f;

    f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return false;
    }
    while (same && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        same = at + n <= len && memcmp(buf, want + at, n) == 0;
        at += n;
    }
    same = same && !ferror(f) && at == len;
    fclose(f);
    return same;
}

/* Copy i's destination holds its source's bytes and permission bits. */
static bool check_copy(const char *dir, size_t i) {
    const struct source *src = &SOURCES[COPIES[i].source];
    char dest[EXAMPLE_PATH_SIZE];
    struct stat st;

    if (!example_join(dest, dir, COPIES[i].dest))
        return false;
    if (stat(dest, &st) != 0) {
        perror(dest);
        return false;
    }
    if (!same_bytes(dest, src->data, src->len) ||
        (st.st_mode & 07777) != src->mode) {
        fprintf(stderr, "%s differs from %s\n", COPIES[i].dest, src->name);
        return false;
    }
    printf("%s -> %s: %zu bytes, mode %04o, same as the source\n", src->name,
           COPIES[i].dest, src->len, (unsigned)(st.st_mode & 07777));
    return true;
}

/* The with block, then the checks. Returns true when all four copies are
 * right. */
static bool run_copies(const char *dir) {
    cf_future *futures[NCOPIES] = {NULL};
    cf_thread_pool_options options;
    cf_executor *e;
    cf_status st;
    bool ok;

    cf_thread_pool_options_init(&options);
    options.max_workers = 4;
    st = cf_thread_pool_new(&options, &e);
    if (!example_ok(st, "cf_thread_pool_new"))
        return false;
    ok = submit_copies(e, dir, futures);
    st = cf_executor_free(e); /* the end of the with block: waits */
    if (!example_ok(st, "cf_executor_free"))
        ok = false;
    for (size_t i = 0; i < NCOPIES && futures[i] != NULL; i++) {
        ok = check_future(futures[i], dir, i) && ok;
        cf_future_release(futures[i]);
    }
    for (size_t i = 0; ok && i < NCOPIES; i++)
        ok = check_copy(dir, i);
    return ok;
}

static int run(void) {
    char dir[EXAMPLE_PATH_SIZE];
    bool ok = false;

    if (!example_make_folder(dir, "copy_files"))
        return EXIT_FAILURE;
    if (!make_contents()) {
        fprintf(stderr, "out of memory\n");
        goto out_free_contents;
    }
    if (!write_sources(dir))
        goto out_free_contents;
    ok = run_copies(dir);

out_free_contents:
    free_contents();
    if (!example_remove_folder(dir))
        ok = false;
    return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}

int main(int argc, char **argv) {
    return example_main(
        argc, argv,
        "The shutil.copy example of Python's concurrent.futures\n"
        "documentation: four copies submitted inside `with\n"
        "ThreadPoolExecutor(max_workers=4) as e:`. Makes src1.txt,\n"
        "src2.txt and src3.txt in a private folder under $TMPDIR (or\n"
        "/tmp), copies them to dest1.txt .. dest4.txt, checks each copy\n"
        "byte for byte, and removes the folder. Exits 1 if a copy is\n"
        "wrong.\n",
        run);
}
