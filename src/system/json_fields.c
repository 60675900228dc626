#include "json_fields.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int vfail(const struct cw_jctx *c, const struct cw_jnode *path_of, struct cw_jpos pos,
                 const char *fmt, va_list ap)
{
    if (!c->err || !c->errlen)
        return -1;
    char path[160];
    size_t need = cw_jnode_path(c->doc, path_of, path, sizeof(path));
    if (need >= sizeof(path))
        strcpy(path + sizeof(path) - 4, "...");
    int k = snprintf(c->err, c->errlen, "%s:%u:%u: %s%s", c->file, pos.line, pos.col, path,
                     path[0] ? ": " : "");
    if (k < 0 || (size_t)k >= c->errlen)
        return -1;
    vsnprintf(c->err + k, c->errlen - (size_t)k, fmt, ap);
    return -1;
}

int cw_jfail_at(const struct cw_jctx *c, const struct cw_jnode *path_of, struct cw_jpos pos,
                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(c, path_of, pos, fmt, ap);
    va_end(ap);
    return -1;
}

int cw_jfail(const struct cw_jctx *c, const struct cw_jnode *n, bool at_key, const char *fmt, ...)
{
    struct cw_jpos pos = { 1, 1 };
    if (n)
        pos = at_key && n->key ? n->key_pos : n->pos;
    va_list ap;
    va_start(ap, fmt);
    vfail(c, n, pos, fmt, ap);
    va_end(ap);
    return -1;
}

const char *cw_jshow(const char *s, size_t n, char *buf, size_t cap)
{
    if (!cap)
        return buf;
    size_t room = cap - 1;
    bool cut = n > room;
    if (cut)
        n = room >= 3 ? room - 3 : 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[i] = ch < 0x20 || ch == 0x7F ? '?' : (char)ch;
    }
    size_t end = n;
    if (cut)
        for (int k = 0; k < 3 && end < room; k++)
            buf[end++] = '.';
    buf[end] = '\0';
    return buf;
}

const char *cw_jtype_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

int cw_jcheck_keys(const struct cw_jctx *c, struct cw_jv obj, const char *const *allowed)
{
    /* Walk the text's members, not jansson's: the first unknown key in the
     * file is the one reported. */
    for (size_t i = 0; i < obj.n->n_children; i++) {
        const struct cw_jnode *m = cw_jnode_child(c->doc, obj.n, i);
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strlen(*a) == m->key_len && !memcmp(*a, m->key, m->key_len);
        if (ok)
            continue;
        char list[256] = "", shown[48];
        size_t used = 0;
        for (const char *const *a = allowed; *a; a++) {
            int k = snprintf(list + used, sizeof(list) - used, "%s%s", a == allowed ? "" : ", ", *a);
            if (k < 0 || (size_t)k >= sizeof(list) - used)
                break;
            used += (size_t)k;
        }
        return cw_jfail_at(c, obj.n, m->key_pos, "unknown key \"%s\" (allowed: %s)",
                           cw_jshow(m->key, m->key_len, shown, sizeof(shown)), list);
    }
    return 0;
}

int cw_jget(const struct cw_jctx *c, struct cw_jv obj, const char *key, bool required,
            struct cw_jv *out)
{
    json_t *v = json_object_get(obj.v, key);
    if (!v) {
        if (required)
            return cw_jfail(c, obj.n, false, "missing field \"%s\"", key);
        return 0;
    }
    const struct cw_jnode *n = cw_jnode_member(c->doc, obj.n, key, strlen(key));
    *out = (struct cw_jv){ v, n ? n : obj.n };
    return 1;
}

struct cw_jv cw_jelem(const struct cw_jctx *c, struct cw_jv arr, size_t i)
{
    const struct cw_jnode *n = cw_jnode_child(c->doc, arr.n, i);
    return (struct cw_jv){ json_array_get(arr.v, i), n ? n : arr.n };
}

static int want(const struct cw_jctx *c, struct cw_jv v, json_type t, const char *what)
{
    if (json_typeof(v.v) == t)
        return 0;
    return cw_jfail(c, v.n, false, "expected %s, got %s", what, cw_jtype_name(v.v));
}

int cw_jobject(const struct cw_jctx *c, struct cw_jv v)
{
    return want(c, v, JSON_OBJECT, "an object");
}

int cw_jarray(const struct cw_jctx *c, struct cw_jv v)
{
    return want(c, v, JSON_ARRAY, "an array");
}

int cw_jstring(const struct cw_jctx *c, struct cw_jv v, const char **out)
{
    if (want(c, v, JSON_STRING, "a string"))
        return -1;
    *out = json_string_value(v.v);
    return 0;
}

int cw_jbool(const struct cw_jctx *c, struct cw_jv v, bool *out)
{
    if (!json_is_boolean(v.v))
        return cw_jfail(c, v.n, false, "expected a boolean (true or false), got %s",
                        cw_jtype_name(v.v));
    *out = json_is_true(v.v);
    return 0;
}

int cw_jint(const struct cw_jctx *c, struct cw_jv v, int64_t min, int64_t max, int64_t *out)
{
    if (!json_is_integer(v.v))
        return cw_jfail(c, v.n, false, "expected an integer, got %s", cw_jtype_name(v.v));
    json_int_t x = json_integer_value(v.v);
    if (x < min || x > max)
        return cw_jfail(c, v.n, false, "%lld is out of range %" PRId64 "..%" PRId64, (long long)x,
                        min, max);
    *out = (int64_t)x;
    return 0;
}

int cw_jname(const struct cw_jctx *c, struct cw_jv v, const char *what,
             char out[CW_SYS_NAME_MAX + 1])
{
    const char *s;
    if (cw_jstring(c, v, &s))
        return -1;
    size_t n = json_string_length(v.v);
    char shown[48];
    if (n == 0)
        return cw_jfail(c, v.n, false, "%s is empty (1-%d characters of A-Z a-z 0-9 _ -)", what,
                        CW_SYS_NAME_MAX);
    if (n > CW_SYS_NAME_MAX)
        return cw_jfail(c, v.n, false, "%s \"%s\" is longer than %d characters", what,
                        cw_jshow(s, n, shown, sizeof(shown)), CW_SYS_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '_' || ch == '-';
        if (!ok)
            return cw_jfail(c, v.n, false,
                            "%s \"%s\" has a character other than A-Z a-z 0-9 _ -", what,
                            cw_jshow(s, n, shown, sizeof(shown)));
    }
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}
