/* common.c -- what the example programs share; see common.h. */
#define _POSIX_C_SOURCE 200809L

#include "common.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *to, const char *argv0, const char *about) {
    fprintf(to, "usage: %s [--help]\n\n%s", argv0, about);
}

int example_main(int argc, char **argv, const char *about, int (*run)(void)) {
    bool help = false;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            help = true;
        } else {
            fprintf(stderr, "%s: unknown argument '%s'\n", argv[0], argv[i]);
            usage(stderr, argv[0], about);
            return 2;
        }
    }
    if (help) {
        usage(stdout, argv[0], about);
        return EXIT_SUCCESS;
    }
    return run();
}

bool example_ok(cf_status st, const char *what) {
    if (st == CF_OK)
        return true;
    fprintf(stderr, "%s: %s\n", what, cf_status_name(st));
    return false;
}

int example_failures;

bool example_must(cf_status st, const char *what) {
    if (example_ok(st, what))
        return true;
    example_failures++;
    return false;
}

bool example_has_int(cf_future *f, int64_t want) {
    cf_value v = cf_none();
    bool same = cf_future_result(f, CF_FOREVER, &v) == CF_OK &&
                v.type == CF_TYPE_INT && v.as.i == want;
    cf_value_free(&v);
    return same;
}

bool example_join(char *out, const char *dir, const char *name) {
    int n = snprintf(out, EXAMPLE_PATH_SIZE, "%s/%s", dir, name);

    if (n < 0 || n >= EXAMPLE_PATH_SIZE) {
        fprintf(stderr, "path too long: %s/%s\n", dir, name);
        return false;
    }
    return true;
}

bool example_make_folder(char *dir, const char *name) {
    const char *tmp = getenv("TMPDIR");
    char pattern[EXAMPLE_PATH_SIZE];
    int n;

    if (tmp == NULL || tmp[0] == '\0')
        tmp = "/tmp";
    n = snprintf(pattern, sizeof pattern, "cfutures-%s-XXXXXX", name);
    if (n < 0 || n >= (int)sizeof pattern || !example_join(dir, tmp, pattern))
        return false;
    if (mkdtemp(dir) == NULL) {
        perror(dir);
        return false;
    }
    return true;
}

bool example_remove_folder(const char *dir) {
    char path[EXAMPLE_PATH_SIZE];
    struct dirent *entry;
    bool ok = true;
    DIR *d;

    d = opendir(dir);
    if (d == NULL) {
        perror(dir);
        return false;
    }
    while ((entry = readdir(d)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 ||
            strcmp(entry->d_name, "..") == 0)
            continue;
        if (!example_join(path, dir, entry->d_name)) {
            ok = false;
        } else if (unlink(path) != 0) {
            perror(path);
            ok = false;
        }
    }
    closedir(d);
    if (rmdir(dir) != 0) {
        perror(dir);
        ok = false;
    }
    return ok;
}

/* The OSError subclass Python raises for errno err. */
static const char *oserror_type(int err) {
    switch (err) {
    case ENOENT:
        return "FileNotFoundError";
    case EEXIST:
        return "FileExistsError";
    case EACCES:
    case EPERM:
        return "PermissionError";
    case EISDIR:
        return "IsADirectoryError";
    case ENOTDIR:
        return "NotADirectoryError";
    default:
        return "OSError";
    }
}

void example_raise_oserror(cf_call *call, int err, const cf_value *path) {
    char reason[128], name[EXAMPLE_PATH_SIZE + 8];

    if (strerror_r(err, reason, sizeof reason) != 0)
        snprintf(reason, sizeof reason, "Unknown error %d", err);
    cf_value_repr(path, name, sizeof name);
    cf_raise(call, oserror_type(err), "[Errno %d] %s: %s", err, reason, name);
}
