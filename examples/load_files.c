/*
 * load_files.c -- the ThreadPoolExecutor example of the concurrent.futures
 * documentation (Python 3.2, section 16.4.2.1), reworked to read local files
 * instead of web pages:
 *
 *     def load_url(url, timeout):
 *         return urllib.request.urlopen(url, timeout=timeout).read()
 *
 *     with concurrent.futures.ThreadPoolExecutor(max_workers=5) as executor:
 *         future_to_url = dict((executor.submit(load_url, url, 60), url)
 *                              for url in URLS)
 *
 *         for future in concurrent.futures.as_completed(future_to_url):
 *             url = future_to_url[future]
 *             if future.exception() is not None:
 *                 print('%r generated an exception: %s' % (url,
 *                                                          future.exception()))
 *             else:
 *                 print('%r page is %d bytes' % (url, len(future.result())))
 *
 * Here load_url(path, timeout) is open(path, 'rb').read(): the five "URLs"
 * are files in a private folder (mkdtemp), and the last one does not exist,
 * as some-made-up-domain.com does not: it raises FileNotFoundError with
 * Python's message. The timeout is passed along as in the docs but a local
 * read has nothing to time out.
 *
 * It shows as_completed (results print in the order the calls finish, which
 * may change from run to run), a map from future back to its URL (a small
 * array search), and how an exception raised by a call comes back through
 * Future.exception() rather than ending the loop.
 *
 * The program checks that exactly one exception was printed, for the missing
 * file, and that the four sizes are right; it exits non-zero otherwise, and
 * removes its folder in every case.
 */
#define _POSIX_C_SOURCE 200809L

#include "cfutures.h"
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REPR_SIZE (EXAMPLE_PATH_SIZE + 8)

/* The URLs, as files: name and size; size -1 means the file is not made. */
static const struct page {
    const char *name;
    long size;
} PAGES[] = {
    {"www.foxnews.com.html", 34567},      {"www.cnn.com.html", 12345},
    {"europe.wsj.com.html", 7890},        {"www.bbc.co.uk.html", 70001},
    {"some-made-up-domain.com.html", -1},
};
#define NPAGES (sizeof PAGES / sizeof PAGES[0])

/* What the loop saw, checked at the end. */
struct tally {
    size_t yielded;
    size_t exceptions;
    size_t right_sizes;
    size_t wrong; /* anything else unexpected */
};

/* ---- The task: load_url(url, timeout) ----------------------------------- */

/* Reads fd to its end into *data (malloc'd) and *len. Returns 0 or an
 * errno value. */
static int read_all(int fd, char **data, size_t *len) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap), *bigger;
    ssize_t got;

    while (buf != NULL) {
        if (n == cap) {
            bigger = realloc(buf, cap * 2);
            if (bigger == NULL)
                break;
            buf = bigger;
            cap *= 2;
        }
        got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int err = errno;

            free(buf);
            return err;
        }
        if (got == 0) {
            *data = buf;
            *len = n;
            return 0;
        }
        n += (size_t)got;
    }
    free(buf);
    return ENOMEM;
}

/* load_url(url, timeout): the whole file at url, as bytes. */
static void load_url(cf_call *call) {
    const cf_value *url = cf_arg(call, 0), *timeout = cf_arg(call, 1);
    cf_value page;
    size_t len = 0;
    char *data = NULL;
    int fd, err;

    if (cf_nargs(call) != 2 || url->type != CF_TYPE_STR ||
        timeout->type != CF_TYPE_INT) {
        cf_raise(call, "TypeError", "load_url() takes a str and an int");
        return;
    }
    fd = open(url->as.buf.data, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        example_raise_oserror(call, errno, url);
        return;
    }
    err = read_all(fd, &data, &len);
    close(fd);
    if (err != 0) {
        example_raise_oserror(call, err, url);
        return;
    }
    if (cf_value_bytes(&page, data, len) == CF_OK)
        cf_return(call, page);
    else
        cf_raise(call, "MemoryError", "%zu bytes", len);
    free(data);
}

/* ---- The program around it --------------------------------------------- */

/* Makes a page of size octets of HTML-ish text at path. */
static bool write_page(const char *path, long size) {
    FILE *f = fopen(path, "wb");
    bool ok;

    if (f == NULL) {
        perror(path);
        return false;
    }
    for (long i = 0; i < size; i++)
        putc("<p>page</p>\n"[i % 12], f);
    ok = !ferror(f);
    if (fclose(f) != 0)
        ok = false;
    if (!ok)
        fprintf(stderr, "%s: write failed\n", path);
    return ok;
}

/* Makes every page that should exist. */
static bool write_pages(const char *dir) {
    char path[EXAMPLE_PATH_SIZE];

    for (size_t i = 0; i < NPAGES; i++) {
        if (PAGES[i].size < 0)
            continue;
        if (!example_join(path, dir, PAGES[i].name) ||
            !write_page(path, PAGES[i].size))
            return false;
    }
    return true;
}

/* future_to_url[future]: the index of future in futures[]. */
static size_t url_of(cf_future *const futures[NPAGES], const cf_future *f) {
    size_t i = 0;

    while (i < NPAGES && futures[i] != f)
        i++;
    return i;
}

/* Python's error message for the missing file: str(FileNotFoundError). */
static bool is_missing_file_error(const cf_error *error,
                                  const char *url_repr) {
    char want[REPR_SIZE + 64];

    snprintf(want, sizeof want, "[Errno %d] %s: %s", ENOENT,
             "No such file or directory", url_repr);
    return strcmp(cf_error_type(error), "FileNotFoundError") == 0 &&
           strcmp(cf_error_message(error), want) == 0;
}

/*
 * The loop body: prints what the docs print for URL i, and checks it
 * against PAGES[i] into the tally.
 */
static void report(cf_future *future, const cf_value *url, size_t i,
                   struct tally *tally) {
    const cf_error *error = NULL;
    cf_value page = cf_none();
    char url_repr[REPR_SIZE];
    cf_status st;

    cf_value_repr(url, url_repr, sizeof url_repr);
    st = cf_future_exception(future, CF_FOREVER, &error);
    if (st == CF_OK && error != NULL) {
        printf("%s generated an exception: %s\n", url_repr,
               cf_error_message(error));
        tally->exceptions++;
        if (PAGES[i].size >= 0 || !is_missing_file_error(error, url_repr)) {
            fprintf(stderr, "unexpected %s for %s\n", cf_error_type(error),
                    url_repr);
            tally->wrong++;
        }
        return;
    }
    if (st == CF_OK)
        st = cf_future_result(future, CF_FOREVER, &page);
    if (st != CF_OK || page.type != CF_TYPE_BYTES) {
        fprintf(stderr, "%s: %s, no bytes\n", url_repr, cf_status_name(st));
        tally->wrong++;
        cf_value_free(&page);
        return;
    }
    printf("%s page is %zu bytes\n", url_repr, page.as.buf.len);
    if (PAGES[i].size >= 0 && page.as.buf.len == (size_t)PAGES[i].size)
        tally->right_sizes++;
    else {
        fprintf(stderr, "%s: wrong size\n", url_repr);
        tally->wrong++;
    }
    cf_value_free(&page);
}

/* for future in as_completed(future_to_url): ... */
static bool print_as_completed(cf_future *const futures[NPAGES],
                               const cf_value urls[NPAGES],
                               struct tally *tally) {
    cf_as_completed *it;
    cf_future *future;
    cf_status st;
    size_t i;

    st = cf_as_completed_new(futures, NPAGES, CF_FOREVER, &it);
    if (!example_ok(st, "cf_as_completed_new"))
        return false;
    while ((st = cf_as_completed_next(it, &future, NULL)) == CF_OK) {
        i = url_of(futures, future);
        if (i < NPAGES)
            report(future, &urls[i], i, tally);
        else {
            fprintf(stderr, "as_completed gave a future never submitted\n");
            tally->wrong++;
        }
        tally->yielded++;
        cf_future_release(future);
    }
    if (st != CF_STOP)
        fprintf(stderr, "cf_as_completed_next: %s\n", cf_status_name(st));
    cf_as_completed_free(it);
    return st == CF_STOP;
}

/* The with block: submit every load_url(url, 60), then the loop. */
static bool run_with_block(const cf_value urls[NPAGES], struct tally *tally) {
    cf_future *futures[NPAGES] = {NULL};
    cf_thread_pool_options options;
    cf_executor *executor;
    cf_status st = CF_OK;
    cf_value args[2];
    bool ok = false;
    size_t n;

    cf_thread_pool_options_init(&options);
    options.max_workers = 5;
    st = cf_thread_pool_new(&options, &executor);
    if (!example_ok(st, "cf_thread_pool_new"))
        return false;
    for (n = 0; n < NPAGES && st == CF_OK; n++) {
        args[0] = urls[n]; /* borrowed: cf_submit copies */
        args[1] = cf_int(60);
        st = cf_submit(executor, load_url, args, 2, &futures[n]);
    }
    if (!example_ok(st, "cf_submit")) {
        n--;
        goto out_free_executor;
    }
    ok = print_as_completed(futures, urls, tally);

out_free_executor:
    st = cf_executor_free(executor);
    if (!example_ok(st, "cf_executor_free"))
        ok = false;
    for (size_t i = 0; i < n; i++)
        cf_future_release(futures[i]);
    return ok;
}

/* Makes the five URL values, dir/<page name> each. */
static bool make_urls(const char *dir, cf_value urls[NPAGES]) {
    char path[EXAMPLE_PATH_SIZE];

    for (size_t i = 0; i < NPAGES; i++) {
        if (!example_join(path, dir, PAGES[i].name) ||
            cf_value_str(&urls[i], path) != CF_OK)
            return false;
    }
    return true;
}

/* Exactly one exception (the missing file) and four right sizes. */
static bool check_tally(const struct tally *t) {
    if (t->yielded == NPAGES && t->exceptions == 1 &&
        t->right_sizes == NPAGES - 1 && t->wrong == 0)
        return true;
    fprintf(stderr,
            "want %zu futures, 1 exception, %zu right sizes, nothing else; "
            "got %zu, %zu, %zu, %zu unexpected\n",
            NPAGES, NPAGES - 1, t->yielded, t->exceptions, t->right_sizes,
            t->wrong);
    return false;
}

static int run(void) {
    struct tally tally = {0, 0, 0, 0};
    cf_value urls[NPAGES];
    char dir[EXAMPLE_PATH_SIZE];
    bool ok = false;

    for (size_t i = 0; i < NPAGES; i++)
        urls[i] = cf_none();
    if (!example_make_folder(dir, "load_files"))
        return EXIT_FAILURE;
    if (!write_pages(dir) || !make_urls(dir, urls))
        goto out_free_urls;
    ok = run_with_block(urls, &tally) && check_tally(&tally);

out_free_urls:
    for (size_t i = 0; i < NPAGES; i++)
        cf_value_free(&urls[i]);
    if (!example_remove_folder(dir))
        ok = false;
    return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}

int main(int argc, char **argv) {
    return example_main(
        argc, argv,
        "The load_url example of Python's concurrent.futures\n"
        "documentation, reading local files instead of web pages: five\n"
        "loads on a ThreadPoolExecutor(max_workers=5), results printed\n"
        "with as_completed as they finish. The files live in a private\n"
        "folder under $TMPDIR (or /tmp), removed at the end; the fifth\n"
        "is missing and raises FileNotFoundError. Exits 1 unless exactly\n"
        "that one exception and the four right sizes are printed.\n",
        run);
}
