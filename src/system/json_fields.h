/* Typed access to the members of a JSON document loaded by jansson, with
 * every error written as one line "FILE:LINE:COLUMN: PATH: message" at the
 * position json_locate found for the offending value (or key, or enclosing
 * object). Used by the description loader and the policy parser. */
#ifndef CAUSEWAY_SYSTEM_JSON_FIELDS_H
#define CAUSEWAY_SYSTEM_JSON_FIELDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "description.h"
#include "json_locate.h"

struct cw_jctx {
    const char *file;          /* as the user gave it, for messages */
    const struct cw_jdoc *doc;
    char *err;
    size_t errlen;
};

/* A jansson value and its place in the text. n is never NULL: when the
 * tree has no node for a value (it always should), the nearest ancestor
 * stands in, so a message still points somewhere sensible. */
struct cw_jv {
    json_t *v;
    const struct cw_jnode *n;
};

/* Write the error at n (its key with at_key) and return -1. */
int cw_jfail(const struct cw_jctx *c, const struct cw_jnode *n, bool at_key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same with the path of one node and an explicit position (an unknown
 * key: the object's path, the key's position). */
int cw_jfail_at(const struct cw_jctx *c, const struct cw_jnode *path_of, struct cw_jpos pos,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* s[0..n) made safe to quote: control bytes become '?', long text is cut
 * with "...". Returns buf. */
const char *cw_jshow(const char *s, size_t n, char *buf, size_t cap);

/* "an object", "an array", "a string", "an integer", "a real number",
 * "a boolean", "null". */
const char *cw_jtype_name(const json_t *v);

/* Unknown keys (in text order) are errors listing the allowed ones. */
int cw_jcheck_keys(const struct cw_jctx *c, struct cw_jv obj, const char *const *allowed);
/* 1 and *out when present, 0 when absent and optional, -1 when absent and
 * required ("missing field", at the object). */
int cw_jget(const struct cw_jctx *c, struct cw_jv obj, const char *key, bool required,
            struct cw_jv *out);
struct cw_jv cw_jelem(const struct cw_jctx *c, struct cw_jv arr, size_t i);

/* Type checks: 0, or -1 with "expected X, got Y". */
int cw_jobject(const struct cw_jctx *c, struct cw_jv v);
int cw_jarray(const struct cw_jctx *c, struct cw_jv v);
int cw_jstring(const struct cw_jctx *c, struct cw_jv v, const char **out);
int cw_jbool(const struct cw_jctx *c, struct cw_jv v, bool *out);
/* An integer in [min, max] ("must be MIN..MAX" otherwise). */
int cw_jint(const struct cw_jctx *c, struct cw_jv v, int64_t min, int64_t max, int64_t *out);

/* A name: 1-32 of [A-Za-z0-9_-]; what says what it names ("VM name"). */
int cw_jname(const struct cw_jctx *c, struct cw_jv v, const char *what,
             char out[CW_SYS_NAME_MAX + 1]);

#endif
