/* Where each JSON value and object key stands in the raw text.
 *
 * jansson gives line/column only for syntax errors; a description that
 * parses but says something wrong must still point at the offending value.
 * cw_json_locate scans the same text once more and builds a tree of the
 * values (in text order) with the 1-based line and column of each value's
 * first character and of each member's key. The loader walks this tree in
 * step with the jansson values, and any node can render its path
 * ("vms[0].nics[1].mac") for messages and lookups.
 *
 * Columns count characters (UTF-8 sequences), not bytes, like jansson's, so
 * syntax and semantic errors agree. Only '\n' ends a line.
 *
 * The scanner also reports duplicate keys in one object (jansson keeps the
 * last one silently, and JSON_REJECT_DUPLICATES reports no usable position):
 * the error names the second occurrence's key position and the first's.
 *
 * It is meant to run on text jansson has accepted, but it is safe on any
 * input: every read is bounded by the length, nesting is capped, and a
 * malformed text is an error, never a crash. */
#ifndef CAUSEWAY_SYSTEM_JSON_LOCATE_H
#define CAUSEWAY_SYSTEM_JSON_LOCATE_H

#include <stdbool.h>
#include <stddef.h>

/* A description is a few levels deep; anything deeper is an error anyway.
 * The cap keeps the recursive scan's stack use small (jansson, which runs
 * first, stops at 2048 levels). */
#define CW_JSON_MAX_DEPTH 512

enum cw_jkind {
    CW_JOBJECT,
    CW_JARRAY,
    CW_JSTRING,
    CW_JNUMBER,
    CW_JTRUE,
    CW_JFALSE,
    CW_JNULL,
};

struct cw_jpos {
    unsigned line, col; /* 1-based */
};

struct cw_jnode {
    enum cw_jkind kind;
    struct cw_jpos pos;     /* the value's first character */
    struct cw_jpos key_pos; /* the opening quote of its key (object members) */
    const char *key;        /* decoded key (object members), else NULL */
    size_t key_len;
    int parent;             /* node index, -1 for the root */
    size_t index;           /* position among its parent's children */
    size_t n_children;
    size_t first_child;     /* into cw_jdoc.children */
};

struct cw_jdoc {
    struct cw_jnode *nodes; /* nodes[0] is the root; text order */
    size_t n_nodes, cap_nodes;
    size_t *children;       /* child node indexes, grouped per parent */
    char *keys;             /* arena of decoded keys */
    size_t keys_used;
};

/* Scan text[0..len). 0 on success; -1 with *at and msg (a short phrase, no
 * position) on a malformed text, a duplicate key or allocation failure. */
int cw_json_locate(const char *text, size_t len, struct cw_jdoc *doc, struct cw_jpos *at,
                   char *msg, size_t msglen);
void cw_jdoc_free(struct cw_jdoc *doc);

const struct cw_jnode *cw_jdoc_root(const struct cw_jdoc *doc);
/* A member of an object by decoded key, or NULL. */
const struct cw_jnode *cw_jnode_member(const struct cw_jdoc *doc, const struct cw_jnode *obj,
                                       const char *key, size_t key_len);
/* The i-th child (array element, or object member in text order), or NULL. */
const struct cw_jnode *cw_jnode_child(const struct cw_jdoc *doc, const struct cw_jnode *n,
                                      size_t i);
const struct cw_jnode *cw_jnode_parent(const struct cw_jdoc *doc, const struct cw_jnode *n);

/* Render n's path: "" for the root, "vms[0].nics[1].mac"; a key that is not
 * [A-Za-z0-9_-]+ is written ["..."] with '"', '\\' and control bytes escaped.
 * Returns the length it needed (like snprintf); the output is always
 * terminated and cut at cap - 1. */
size_t cw_jnode_path(const struct cw_jdoc *doc, const struct cw_jnode *n, char *buf, size_t cap);
/* Find a node by a path in the form cw_jnode_path writes, limited to plain
 * keys and [N] indexes ("" is the root); NULL if there is none. The node
 * holds both its value's and its key's position. */
const struct cw_jnode *cw_jdoc_find(const struct cw_jdoc *doc, const char *path);

#endif
