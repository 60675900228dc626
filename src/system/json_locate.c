#include "json_locate.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct scan {
    const unsigned char *s;
    size_t len, i;
    unsigned line, col; /* of s[i] */
    struct cw_jdoc *doc;
    struct cw_jpos *err_at;
    char *msg;
    size_t msglen;
};

__attribute__((format(printf, 3, 4))) static int fail(struct scan *sc, struct cw_jpos at,
                                                      const char *fmt, ...)
{
    *sc->err_at = at;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sc->msg, sc->msglen, fmt, ap);
    va_end(ap);
    return -1;
}

static struct cw_jpos here(const struct scan *sc)
{
    return (struct cw_jpos){ sc->line, sc->col };
}

/* Consume one byte. A UTF-8 continuation byte does not start a character,
 * so it does not move the column (jansson counts the same way). */
static void adv(struct scan *sc)
{
    unsigned char c = sc->s[sc->i++];
    if (c == '\n') {
        sc->line++;
        sc->col = 1;
    } else if ((c & 0xC0) != 0x80) {
        sc->col++;
    }
}

static void skip_ws(struct scan *sc)
{
    while (sc->i < sc->len) {
        unsigned char c = sc->s[sc->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        adv(sc);
    }
}

static int peek(const struct scan *sc)
{
    return sc->i < sc->len ? sc->s[sc->i] : -1;
}

static int new_node(struct scan *sc, enum cw_jkind kind, int parent, size_t *out)
{
    struct cw_jdoc *d = sc->doc;
    if (d->n_nodes >= INT_MAX) /* parent indexes are ints */
        return fail(sc, here(sc), "too many values");
    if (d->n_nodes == d->cap_nodes) {
        size_t cap = d->cap_nodes ? d->cap_nodes * 2 : 64;
        if (cap > SIZE_MAX / sizeof(*d->nodes))
            return fail(sc, here(sc), "out of memory");
        struct cw_jnode *n = realloc(d->nodes, cap * sizeof(*n));
        if (!n)
            return fail(sc, here(sc), "out of memory");
        d->nodes = n;
        d->cap_nodes = cap;
    }
    size_t idx = d->n_nodes++;
    struct cw_jnode *n = &d->nodes[idx];
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    n->pos = here(sc);
    n->parent = parent;
    if (parent >= 0)
        n->index = d->nodes[parent].n_children++;
    *out = idx;
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int read_u4(struct scan *sc, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(peek(sc));
        if (h < 0)
            return fail(sc, here(sc), "bad \\u escape");
        v = v << 4 | (unsigned)h;
        adv(sc);
    }
    *out = v;
    return 0;
}

/* Append to the key arena. Decoded text is never longer than its source
 * (quotes and escapes shrink), so an arena of len + 1 bytes always fits;
 * the check is there for a caller that breaks that assumption. */
static int put(struct scan *sc, const unsigned char *b, size_t n)
{
    if (n > sc->len + 1 - sc->doc->keys_used)
        return fail(sc, here(sc), "internal: key arena full");
    memcpy(sc->doc->keys + sc->doc->keys_used, b, n);
    sc->doc->keys_used += n;
    return 0;
}

static int put_utf8(struct scan *sc, unsigned cp)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | cp >> 6);
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | cp >> 12);
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | cp >> 18);
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return put(sc, b, n);
}

/* A string at s[i] == '"'. With decode, its decoded bytes go to the key
 * arena (terminated), at *start with length *n. */
static int scan_string(struct scan *sc, bool decode, size_t *start, size_t *n)
{
    struct cw_jpos open = here(sc);
    size_t from = sc->doc->keys_used;
    adv(sc);
    for (;;) {
        int c = peek(sc);
        if (c < 0)
            return fail(sc, open, "unterminated string");
        if (c == '"') {
            adv(sc);
            break;
        }
        if (c < 0x20)
            return fail(sc, here(sc), "control character in string");
        if (c != '\\') {
            if (decode && put(sc, &sc->s[sc->i], 1))
                return -1;
            adv(sc);
            continue;
        }
        struct cw_jpos esc = here(sc);
        adv(sc);
        c = peek(sc);
        if (c < 0)
            return fail(sc, open, "unterminated string");
        adv(sc);
        unsigned char ch;
        switch (c) {
        case '"': ch = '"'; break;
        case '\\': ch = '\\'; break;
        case '/': ch = '/'; break;
        case 'b': ch = '\b'; break;
        case 'f': ch = '\f'; break;
        case 'n': ch = '\n'; break;
        case 'r': ch = '\r'; break;
        case 't': ch = '\t'; break;
        case 'u': {
            unsigned cp;
            if (read_u4(sc, &cp))
                return -1;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return fail(sc, esc, "lone low surrogate in \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (peek(sc) != '\\')
                    return fail(sc, esc, "high surrogate without its low half");
                adv(sc);
                if (peek(sc) != 'u')
                    return fail(sc, esc, "high surrogate without its low half");
                adv(sc);
                if (read_u4(sc, &lo))
                    return -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return fail(sc, esc, "high surrogate without its low half");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (decode && put_utf8(sc, cp))
                return -1;
            continue;
        }
        default:
            return fail(sc, esc, "bad escape");
        }
        if (decode && put(sc, &ch, 1))
            return -1;
    }
    if (decode) {
        *start = from;
        *n = sc->doc->keys_used - from;
        static const unsigned char nul = 0;
        if (put(sc, &nul, 1))
            return -1;
    }
    return 0;
}

static int expect_word(struct scan *sc, const char *w)
{
    struct cw_jpos at = here(sc);
    size_t n = strlen(w);
    if (sc->len - sc->i < n || memcmp(sc->s + sc->i, w, n))
        return fail(sc, at, "invalid literal");
    for (size_t k = 0; k < n; k++)
        adv(sc);
    return 0;
}

static int scan_value(struct scan *sc, int parent, unsigned depth, size_t *out);

/* Called with s[i] at the first character of a member's key. */
static int scan_member(struct scan *sc, size_t obj, unsigned depth)
{
    if (peek(sc) != '"')
        return fail(sc, here(sc), "expected a string key");
    struct cw_jpos kpos = here(sc);
    size_t kstart, klen;
    if (scan_string(sc, true, &kstart, &klen))
        return -1;
    skip_ws(sc);
    if (peek(sc) != ':')
        return fail(sc, here(sc), "expected ':'");
    adv(sc);
    skip_ws(sc);
    size_t v;
    if (scan_value(sc, (int)obj, depth + 1, &v))
        return -1;
    /* The arena never moves, so the key pointer stays valid. */
    struct cw_jnode *n = &sc->doc->nodes[v];
    n->key_pos = kpos;
    n->key = sc->doc->keys + kstart;
    n->key_len = klen;
    return 0;
}

static int scan_container(struct scan *sc, size_t self, unsigned depth, bool object)
{
    int close = object ? '}' : ']';
    adv(sc);
    skip_ws(sc);
    if (peek(sc) == close) {
        adv(sc);
        return 0;
    }
    for (;;) {
        skip_ws(sc);
        if (object) {
            if (scan_member(sc, self, depth))
                return -1;
        } else {
            size_t v;
            if (scan_value(sc, (int)self, depth + 1, &v))
                return -1;
        }
        skip_ws(sc);
        int c = peek(sc);
        if (c == ',') {
            adv(sc);
            continue;
        }
        if (c == close) {
            adv(sc);
            return 0;
        }
        return fail(sc, here(sc), object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int scan_value(struct scan *sc, int parent, unsigned depth, size_t *out)
{
    if (depth > CW_JSON_MAX_DEPTH)
        return fail(sc, here(sc), "nesting deeper than %u levels", CW_JSON_MAX_DEPTH);
    int c = peek(sc);
    if (c < 0)
        return fail(sc, here(sc), "unexpected end of text");
    enum cw_jkind kind;
    if (c == '{')
        kind = CW_JOBJECT;
    else if (c == '[')
        kind = CW_JARRAY;
    else if (c == '"')
        kind = CW_JSTRING;
    else if (c == '-' || (c >= '0' && c <= '9'))
        kind = CW_JNUMBER;
    else if (c == 't')
        kind = CW_JTRUE;
    else if (c == 'f')
        kind = CW_JFALSE;
    else if (c == 'n')
        kind = CW_JNULL;
    else
        return fail(sc, here(sc), "unexpected character");
    if (new_node(sc, kind, parent, out))
        return -1;
    switch (kind) {
    case CW_JOBJECT:
        return scan_container(sc, *out, depth, true);
    case CW_JARRAY:
        return scan_container(sc, *out, depth, false);
    case CW_JSTRING:
        return scan_string(sc, false, NULL, NULL);
    case CW_JNUMBER:
        /* The exact grammar is jansson's job; here a number only has to
         * end where the next token starts. */
        while ((c = peek(sc)) >= 0 &&
               ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'))
            adv(sc);
        return 0;
    case CW_JTRUE:
        return expect_word(sc, "true");
    case CW_JFALSE:
        return expect_word(sc, "false");
    case CW_JNULL:
        return expect_word(sc, "null");
    }
    return 0;
}

/* Group child indexes per parent: children of one parent are created in
 * text order, so one counting pass and one filling pass keep that order. */
static int build_children(struct cw_jdoc *d)
{
    d->children = calloc(d->n_nodes ? d->n_nodes : 1, sizeof(*d->children));
    if (!d->children)
        return -1;
    size_t next = 0;
    for (size_t k = 0; k < d->n_nodes; k++) {
        d->nodes[k].first_child = next;
        next += d->nodes[k].n_children;
    }
    for (size_t k = 1; k < d->n_nodes; k++) {
        const struct cw_jnode *n = &d->nodes[k];
        const struct cw_jnode *p = &d->nodes[n->parent];
        d->children[p->first_child + n->index] = k;
    }
    return 0;
}

struct keyref {
    const char *key;
    size_t len;
    size_t node;
};

static int keyref_cmp(const void *a, const void *b)
{
    const struct keyref *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int r = memcmp(x->key, y->key, n);
    if (r)
        return r;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->node < y->node ? -1 : x->node > y->node;
}

/* Sort each object's keys (n log n: a hostile object with many keys stays
 * cheap) and report the duplicate whose second occurrence comes first in
 * the text. */
static int find_duplicates(struct scan *sc)
{
    struct cw_jdoc *d = sc->doc;
    size_t most = 0;
    for (size_t k = 0; k < d->n_nodes; k++)
        if (d->nodes[k].kind == CW_JOBJECT && d->nodes[k].n_children > most)
            most = d->nodes[k].n_children;
    if (most < 2)
        return 0;
    struct keyref *refs = calloc(most, sizeof(*refs));
    if (!refs)
        return fail(sc, (struct cw_jpos){ 1, 1 }, "out of memory");
    size_t best = SIZE_MAX, best_first = 0;
    for (size_t k = 0; k < d->n_nodes; k++) {
        const struct cw_jnode *o = &d->nodes[k];
        if (o->kind != CW_JOBJECT || o->n_children < 2)
            continue;
        for (size_t c = 0; c < o->n_children; c++) {
            size_t m = d->children[o->first_child + c];
            refs[c] = (struct keyref){ d->nodes[m].key, d->nodes[m].key_len, m };
        }
        qsort(refs, o->n_children, sizeof(*refs), keyref_cmp);
        size_t group = 0;
        for (size_t c = 1; c < o->n_children; c++) {
            if (refs[c].len != refs[group].len || memcmp(refs[c].key, refs[group].key, refs[c].len)) {
                group = c;
                continue;
            }
            if (refs[c].node < best) {
                best = refs[c].node;
                best_first = refs[group].node;
            }
        }
    }
    free(refs);
    if (best == SIZE_MAX)
        return 0;
    const struct cw_jnode *dup = &d->nodes[best], *first = &d->nodes[best_first];
    char shown[40];
    size_t n = dup->key_len < sizeof(shown) - 4 ? dup->key_len : sizeof(shown) - 4;
    memcpy(shown, dup->key, n);
    strcpy(shown + n, dup->key_len > n ? "..." : "");
    for (char *p = shown; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = '?';
    /* Name the object like every other message does ("vms[0]: ..."). */
    char path[96];
    size_t need = cw_jnode_path(d, &d->nodes[dup->parent], path, sizeof(path));
    if (need >= sizeof(path))
        strcpy(path + sizeof(path) - 4, "...");
    return fail(sc, dup->key_pos, "%s%sduplicate key \"%s\" (first at %u:%u)", path,
                path[0] ? ": " : "", shown, first->key_pos.line, first->key_pos.col);
}

int cw_json_locate(const char *text, size_t len, struct cw_jdoc *doc, struct cw_jpos *at,
                   char *msg, size_t msglen)
{
    memset(doc, 0, sizeof(*doc));
    struct cw_jpos dummy_at;
    char dummy_msg[8];
    struct scan sc = {
        .s = (const unsigned char *)text,
        .len = len,
        .line = 1,
        .col = 1,
        .doc = doc,
        .err_at = at ? at : &dummy_at,
        .msg = msg && msglen ? msg : dummy_msg,
        .msglen = msg && msglen ? msglen : sizeof(dummy_msg),
    };
    if (len == SIZE_MAX) {
        fail(&sc, here(&sc), "text too long");
        return -1;
    }
    doc->keys = malloc(len + 1);
    if (!doc->keys) {
        fail(&sc, here(&sc), "out of memory");
        return -1;
    }
    skip_ws(&sc);
    size_t root;
    if (scan_value(&sc, -1, 0, &root))
        goto bad;
    skip_ws(&sc);
    if (sc.i != sc.len) {
        fail(&sc, here(&sc), "text after the value");
        goto bad;
    }
    if (build_children(doc)) {
        fail(&sc, here(&sc), "out of memory");
        goto bad;
    }
    if (find_duplicates(&sc))
        goto bad;
    return 0;
bad:
    cw_jdoc_free(doc);
    return -1;
}

void cw_jdoc_free(struct cw_jdoc *doc)
{
    free(doc->nodes);
    free(doc->children);
    free(doc->keys);
    memset(doc, 0, sizeof(*doc));
}

const struct cw_jnode *cw_jdoc_root(const struct cw_jdoc *doc)
{
    return doc->n_nodes ? &doc->nodes[0] : NULL;
}

const struct cw_jnode *cw_jnode_child(const struct cw_jdoc *doc, const struct cw_jnode *n,
                                      size_t i)
{
    if (!n || i >= n->n_children)
        return NULL;
    return &doc->nodes[doc->children[n->first_child + i]];
}

const struct cw_jnode *cw_jnode_member(const struct cw_jdoc *doc, const struct cw_jnode *obj,
                                       const char *key, size_t key_len)
{
    if (!obj || obj->kind != CW_JOBJECT)
        return NULL;
    for (size_t c = 0; c < obj->n_children; c++) {
        const struct cw_jnode *m = cw_jnode_child(doc, obj, c);
        if (m->key_len == key_len && !memcmp(m->key, key, key_len))
            return m;
    }
    return NULL;
}

const struct cw_jnode *cw_jnode_parent(const struct cw_jdoc *doc, const struct cw_jnode *n)
{
    return n && n->parent >= 0 ? &doc->nodes[n->parent] : NULL;
}

static bool plain_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static bool plain_key(const char *k, size_t n)
{
    if (!n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!plain_char((unsigned char)k[i]))
            return false;
    return true;
}

struct out {
    char *buf;
    size_t cap, n;
};

static void emit(struct out *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++, o->n++)
        if (o->n + 1 < o->cap)
            o->buf[o->n] = s[i];
}

static void emit_segment(struct out *o, const struct cw_jdoc *doc, const struct cw_jnode *n)
{
    const struct cw_jnode *p = cw_jnode_parent(doc, n);
    if (!p)
        return;
    /* Iterate up to the root first through recursion; depth is bounded by
     * CW_JSON_MAX_DEPTH. */
    emit_segment(o, doc, p);
    char tmp[32];
    if (p->kind == CW_JARRAY) {
        int k = snprintf(tmp, sizeof(tmp), "[%zu]", n->index);
        emit(o, tmp, (size_t)k);
        return;
    }
    if (plain_key(n->key, n->key_len)) {
        if (p->parent >= 0)
            emit(o, ".", 1);
        emit(o, n->key, n->key_len);
        return;
    }
    emit(o, "[\"", 2);
    for (size_t i = 0; i < n->key_len; i++) {
        unsigned char c = (unsigned char)n->key[i];
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            emit(o, tmp, 2);
        } else if (c < 0x20 || c == 0x7F) {
            int k = snprintf(tmp, sizeof(tmp), "\\x%02x", c);
            emit(o, tmp, (size_t)k);
        } else {
            emit(o, (const char *)&c, 1);
        }
    }
    emit(o, "\"]", 2);
}

size_t cw_jnode_path(const struct cw_jdoc *doc, const struct cw_jnode *n, char *buf, size_t cap)
{
    struct out o = { buf, cap, 0 };
    if (n)
        emit_segment(&o, doc, n);
    if (cap)
        buf[o.n < cap ? o.n : cap - 1] = '\0';
    return o.n;
}

const struct cw_jnode *cw_jdoc_find(const struct cw_jdoc *doc, const char *path)
{
    const struct cw_jnode *n = cw_jdoc_root(doc);
    const char *p = path;
    while (n && *p) {
        if (*p == '[') {
            p++;
            if (*p < '0' || *p > '9' || n->kind != CW_JARRAY)
                return NULL;
            size_t i = 0;
            while (*p >= '0' && *p <= '9') {
                if (i > (SIZE_MAX - 9) / 10)
                    return NULL;
                i = i * 10 + (size_t)(*p++ - '0');
            }
            if (*p++ != ']')
                return NULL;
            n = cw_jnode_child(doc, n, i);
            continue;
        }
        if (*p == '.') {
            if (p == path)
                return NULL;
            p++;
        } else if (p != path) {
            return NULL;
        }
        const char *k = p;
        while (plain_char((unsigned char)*p))
            p++;
        if (p == k)
            return NULL;
        n = cw_jnode_member(doc, n, k, (size_t)(p - k));
    }
    return n;
}
