/*
 * gate.c -- gates across processes: a gate is a file in a private folder
 * made by mkdtemp; opening it creates the file, waiting for it polls.
 * Gate names are checked by the parser ([a-z_][a-z0-9_]*), so every path
 * stays inside the folder.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"

char *sc_gates_make(void) {
    const char *tmp = getenv("TMPDIR");
    char *path;
    size_t n;

    if (!tmp || !*tmp)
        tmp = "/tmp";
    n = strlen(tmp) + sizeof "/cf-scenario-XXXXXX";
    path = malloc(n);
    if (!path)
        return NULL;
    snprintf(path, n, "%s/cf-scenario-XXXXXX", tmp);
    if (!mkdtemp(path)) {
        free(path);
        return NULL;
    }
    return path;
}

void sc_gates_remove(const char *folder) {
    char path[PATH_MAX];
    struct dirent *e;
    DIR *d = opendir(folder);

    if (d) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", folder, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(folder);
}

static void gate_path(char *path, size_t n, const char *folder,
                      const char *g) {
    snprintf(path, n, "%s/%s", folder, g);
}

int sc_gate_open(const char *folder, const char *g) {
    char path[PATH_MAX];
    int fd;

    gate_path(path, sizeof path, folder, g);
    fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno;
    close(fd);
    return 0;
}

void sc_gate_wait(const char *folder, const char *g) {
    const struct timespec ms = {0, 1000000};
    char path[PATH_MAX];
    struct stat st;

    gate_path(path, sizeof path, folder, g);
    while (stat(path, &st) != 0)
        nanosleep(&ms, NULL);
}
