/* A running system's directory: see rundir.h. */
#include "rundir.h"

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int ensure_dir(const char *path)
{
    if (mkdir(path, 0700) == 0)
        return 0;
    if (errno != EEXIST)
        return -1;
    /* Someone else's directory (or a symlink planted in /tmp) must not
     * receive our sockets. */
    struct stat st;
    if (lstat(path, &st) < 0)
        return -1;
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

int cw_rundir_base(char *out, size_t len)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n;
    if (xdg && xdg[0] == '/' && access(xdg, W_OK) == 0)
        n = snprintf(out, len, "%s/causeway", xdg);
    else if (geteuid() == 0)
        n = snprintf(out, len, "/run/causeway");
    else
        n = snprintf(out, len, "/tmp/causeway-%u", (unsigned)geteuid());
    if (n < 0 || (size_t)n >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return ensure_dir(out);
}

void cw_rundir_system_name(const char *path, char *out, size_t len)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n > 5 && !strcmp(b + n - 5, ".json"))
        n -= 5;
    if (n > 32)
        n = 32;
    if (n >= len)
        n = len - 1;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        out[i] = ok ? c : '_';
    }
    out[n] = '\0';
    if (!n)
        snprintf(out, len, "system");
}

int cw_rundir_create(struct cw_rundir *r, const char *name, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    if (cw_rundir_base(r->base, sizeof(r->base)) < 0) {
        snprintf(err, errlen, "runtime directory %s: %s", r->base[0] ? r->base : "(none)",
                 strerror(errno));
        return -1;
    }
    unsigned pid = (unsigned)getpid();
    int a = snprintf(r->dir, sizeof(r->dir), "%s/%s.%u", r->base, name, pid);
    int b = snprintf(r->control, sizeof(r->control), "%s/%s.%u.sock", r->base, name, pid);
    /* Room for the longest file inside: "vm63.nic3.sock". */
    if (a < 0 || b < 0 || (size_t)a + 16 >= sizeof(r->dir) || (size_t)b >= sizeof(r->control)) {
        snprintf(err, errlen, "runtime directory %s: path too long for unix sockets "
                 "(set XDG_RUNTIME_DIR to a shorter directory)", r->base);
        return -1;
    }
    if (mkdir(r->dir, 0700) < 0) {
        snprintf(err, errlen, "cannot create %s: %s", r->dir, strerror(errno));
        return -1;
    }
    return 0;
}

int cw_rundir_file(const struct cw_rundir *r, const char *file, char *out, size_t len)
{
    int n = snprintf(out, len, "%s/%s", r->dir, file);
    if (n < 0 || (size_t)n >= len || (size_t)n >= CW_RUNDIR_PATH_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

void cw_rundir_remove(const struct cw_rundir *r)
{
    if (r->control[0])
        unlink(r->control);
    if (!r->dir[0])
        return;
    DIR *d = opendir(r->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char p[CW_RUNDIR_PATH_MAX + 256];
            snprintf(p, sizeof(p), "%s/%s", r->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(r->dir);
}
