/*
 * main.c -- cf-scenario, the C scenario driver (SCENARIOS.md "Running"):
 * parses every file first (any malformed file: every error printed, exit
 * 2, nothing run), then runs each scenario on each pool it allows, each
 * run under the watchdog, and prints a result line per run and a summary.
 * Exit status: 0 all passed, 1 a run failed, 2 a malformed file or usage.
 */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "driver.h"

static const char usage[] =
    "usage: cf-scenario [OPTION...] FILE|FOLDER...\n"
    "Runs scenario files (conformance/SCENARIOS.md) on the cfutures library "
    "it links,\n"
    "each on the thread pool and on the process pool, in a child process "
    "under a\n"
    "watchdog, printing the canonical trace and checking the expectations.\n"
    "Folders are searched for *.scenario files, in sorted order.\n"
    "\n"
    "  --pool thread|process  run only on that pool (default: each pool the\n"
    "                         scenario allows)\n"
    "  --trace-only           print traces, do not check expectations\n"
    "  --timeout S            the watchdog's limit per scenario run, in "
    "seconds\n"
    "                         (default 60, times CF_SCENARIO_TIMEOUT_SCALE)\n"
    "  --quiet                print only failures and the summary\n"
    "  --help                 print this help\n"
    "\n"
    "Exit status: 0 every expectation held, 1 one failed (or a run hung or\n"
    "died), 2 a file is malformed or the command line is wrong.\n";

typedef struct files {
    char **v;
    size_t n, cap;
} files;

static void files_add(files *f, const char *path) {
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->v = realloc(f->v, f->cap * sizeof *f->v);
        if (!f->v) {
            perror("cf-scenario");
            exit(2);
        }
    }
    f->v[f->n] = strdup(path);
    if (!f->v[f->n]) {
        perror("cf-scenario");
        exit(2);
    }
    f->n++;
}

static int path_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), k = strlen(tail);

    return n > k && strcmp(s + n - k, tail) == 0;
}

/* Adds the *.scenario files under folder, recursively. */
static void walk(files *f, const char *folder) {
    DIR *d = opendir(folder);
    struct dirent *e;

    if (!d) {
        fprintf(stderr, "cf-scenario: %s: %s\n", folder, strerror(errno));
        exit(2);
    }
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s%s%s", folder,
                 ends_with(folder, "/") ? "" : "/", e->d_name);
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            walk(f, path);
        else if (ends_with(e->d_name, ".scenario"))
            files_add(f, path);
    }
    closedir(d);
}

static void add_arg(files *f, const char *arg) {
    struct stat st;
    size_t start = f->n;

    if (stat(arg, &st) != 0) {
        fprintf(stderr, "cf-scenario: %s: %s\n", arg, strerror(errno));
        exit(2);
    }
    if (!S_ISDIR(st.st_mode)) {
        files_add(f, arg);
        return;
    }
    walk(f, arg);
    qsort(f->v + start, f->n - start, sizeof *f->v, path_cmp);
}

static char *read_file(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;

    if (!fp)
        return NULL;
    for (;;) {
        size_t got;
        if (n == cap) {
            char *nb;
            cap = cap ? cap * 2 : 4096;
            nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(fp);
                return NULL;
            }
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0)
            break;
    }
    fclose(fp);
    *len = n;
    return buf;
}

static void usage_error(const char *what) {
    fprintf(stderr, "cf-scenario: %s\n%s", what, usage);
    exit(2);
}

typedef struct cli {
    sc_options opt;
    bool one_pool;
    sc_pools pool;
    files paths;
} cli;

static void parse_cli(int argc, char **argv, cli *c) {
    const char *scale = getenv("CF_SCENARIO_TIMEOUT_SCALE");
    int i;

    c->opt.timeout = 60;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            exit(0);
        } else if (strcmp(a, "--trace-only") == 0) {
            c->opt.trace_only = true;
        } else if (strcmp(a, "--quiet") == 0) {
            c->opt.quiet = true;
        } else if (strcmp(a, "--pool") == 0 || strncmp(a, "--pool=", 7) == 0) {
            const char *v = a[6] == '='    ? a + 7
                            : i + 1 < argc ? argv[++i]
                                           : "";
            c->one_pool = true;
            if (strcmp(v, "thread") == 0)
                c->pool = SC_POOLS_THREAD;
            else if (strcmp(v, "process") == 0)
                c->pool = SC_POOLS_PROCESS;
            else
                usage_error("--pool takes thread or process");
        } else if (strcmp(a, "--timeout") == 0 ||
                   strncmp(a, "--timeout=", 10) == 0) {
            const char *v = a[9] == '='    ? a + 10
                            : i + 1 < argc ? argv[++i]
                                           : "";
            char *end;
            c->opt.timeout = strtod(v, &end);
            if (!*v || *end || !(c->opt.timeout > 0))
                usage_error("--timeout takes a number of seconds above 0");
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "cf-scenario: unknown option %s\n", a);
            usage_error("see the options below");
        } else {
            add_arg(&c->paths, a);
        }
    }
    if (scale && atof(scale) > 0)
        c->opt.timeout *= atof(scale);
    if (c->paths.n == 0)
        usage_error("no scenario file or folder given");
}

/* Parses every file; returns false (after printing every error) if one is
 * malformed. */
static bool parse_all(const files *paths, cf_scenario **sc) {
    bool ok = true;
    size_t i;

    for (i = 0; i < paths->n; i++) {
        size_t len = 0;
        char *text = read_file(paths->v[i], &len), *error = NULL;
        sc[i] = NULL;
        if (!text) {
            fprintf(stderr, "%s:1:1: cannot read the file: %s\n", paths->v[i],
                    strerror(errno));
            ok = false;
            continue;
        }
        if (cf_scenario_parse(paths->v[i], text, len, &sc[i], &error) != 0) {
            fprintf(stderr, "%s\n", error);
            free(error);
            ok = false;
        }
        free(text);
    }
    return ok;
}

int main(int argc, char **argv) {
    cli c;
    cf_scenario **sc;
    size_t i, runs = 0, passed = 0;
    int rc = 0;

    memset(&c, 0, sizeof c);
    parse_cli(argc, argv, &c);
#ifdef PR_SET_CHILD_SUBREAPER
    /* a killed scenario's pool workers are reparented here, and reaped */
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
#endif
    sc = calloc(c.paths.n, sizeof *sc);
    if (!sc)
        return 2;
    if (!parse_all(&c.paths, sc)) {
        rc = 2;
        goto out;
    }
    for (i = 0; i < c.paths.n; i++) {
        int k;
        for (k = SC_POOLS_THREAD; k <= SC_POOLS_PROCESS; k++) {
            sc_pools pool = (sc_pools)k;
            bool ok;
            if (c.one_pool && pool != c.pool)
                continue;
            if (sc[i]->pools != SC_POOLS_BOTH && sc[i]->pools != pool) {
                if (c.one_pool && !c.opt.quiet)
                    printf("SKIP %s (%s): the scenario has pools: %s\n",
                           sc[i]->file, sc_pool_name(pool),
                           sc_pool_name(sc[i]->pools));
                continue;
            }
            runs++;
            ok = sc_watch(sc[i], pool, &c.opt);
            passed += ok;
            if (!ok || !c.opt.quiet)
                printf("%s %s (%s)\n", ok ? "PASS" : "FAIL", sc[i]->file,
                       sc_pool_name(pool));
            fflush(stdout);
        }
    }
    printf("%zu runs: %zu passed, %zu failed\n", runs, passed, runs - passed);
    rc = passed == runs ? 0 : 1;
out:
    for (i = 0; i < c.paths.n; i++) {
        cf_scenario_free(sc[i]);
        free(c.paths.v[i]);
    }
    free(c.paths.v);
    free(sc);
    return rc;
}
