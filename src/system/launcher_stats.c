/* Stats rounds: a client's {"op":"stats"} asks every running device and
 * switch (with a fresh seq), and is answered once all have replied or after
 * STATS_TIMEOUT_MS, whichever comes first. Clients asking while a round runs
 * are answered by that round. A child's stats reply is untrusted input that
 * we merely pass on: it is copied into the answer under its own key space,
 * never interpreted, and a reply that is not for the current round is
 * dropped. */
#include <string.h>

#include "launcher_int.h"

static bool askable(const struct child *c)
{
    return c->state == C_RUNNING && c->ctl >= 0 && c->pid > 0;
}

static const char *child_state_name(const struct child *c)
{
    switch (c->state) {
    case C_RUNNING: return "running";
    case C_IDLE: return "restarting";
    case C_FAILED: return "failed";
    case C_DONE: return "stopped";
    }
    return "?";
}

/* The child's reply without the protocol keys, or an error marker. */
static void merge(json_t *into, struct child *c)
{
    if (!c->stats) {
        json_object_set_new(into, "error", json_string(askable(c) ? "no answer" : "not running"));
        return;
    }
    const char *key;
    json_t *val;
    json_object_foreach(c->stats, key, val) {
        /* Our own keys win: a child cannot rename itself or fake its state. */
        if (!strcmp(key, "op") || !strcmp(key, "seq") || json_object_get(into, key))
            continue;
        json_object_set(into, key, val);
    }
}

static json_t *build(struct launcher *L, uint64_t now_ms)
{
    const struct cw_system *sys = L->sys;
    json_t *vms = json_array(), *sws = json_array();
    for (unsigned v = 0; v < sys->n_vms; v++) {
        struct vm_rt *vr = &L->vm[v];
        json_t *nics = json_array();
        for (unsigned i = 0; i < sys->vms[v].n_nics; i++) {
            struct nic_rt *n = &L->nic[vr->first_nic + i];
            char mac[18];
            cw_format_mac(sys->vms[v].nics[i].mac, mac);
            json_t *o = json_pack("{s:i, s:s, s:i, s:s, s:s, s:i}", "nic", (int)i, "switch",
                                  sys->switches[n->sw].name, "port", n->port, "mac", mac,
                                  "device", child_state_name(&n->dev), "restarts",
                                  (int)n->dev.restarts);
            if (o) {
                merge(o, &n->dev);
                json_array_append_new(nics, o);
            }
        }
        const char *state = vr->state == VM_WAITING ? "starting"
                            : vr->state == VM_RUNNING ? "running" : "exited";
        json_t *o = json_pack("{s:s, s:s, s:o}", "name", sys->vms[v].name, "state", state, "nics",
                              nics);
        if (o && vr->state == VM_EXITED)
            json_object_set_new(o, "exit", json_string(vr->result));
        if (o)
            json_array_append_new(vms, o);
    }
    for (unsigned s = 0; s < sys->n_switches; s++) {
        struct child *c = &L->sw[s].ch;
        json_t *o = json_pack("{s:s, s:s, s:i}", "name", sys->switches[s].name, "state",
                              child_state_name(c), "restarts", (int)c->restarts);
        if (o) {
            merge(o, c);
            json_array_append_new(sws, o);
        }
    }
    return json_pack("{s:s, s:s, s:I, s:o, s:o}", "op", "stats", "system", L->sysname,
                     "uptime_ms", (json_int_t)(now_ms - L->start_ms), "vms", vms, "switches",
                     sws);
}

static void each_child(struct launcher *L, void (*fn)(struct launcher *, struct child *))
{
    for (unsigned s = 0; s < L->sys->n_switches; s++)
        fn(L, &L->sw[s].ch);
    for (unsigned n = 0; n < L->n_nics; n++)
        fn(L, &L->nic[n].dev);
}

static void clear_child(struct launcher *L, struct child *c)
{
    (void)L;
    json_decref(c->stats);
    c->stats = NULL;
    c->stats_pending = false;
}

static void finish(struct launcher *L, uint64_t now_ms)
{
    json_t *answer = build(L, now_ms);
    for (int i = 0; i < CW_SRV_MAX_CLIENTS; i++) {
        struct cw_srv_client *cl = &L->srv.c[i];
        if (cl->fd < 0 || !cl->waiting)
            continue;
        cl->waiting = false;
        if (answer)
            cw_srv_reply(&L->srv, i, answer, now_ms);
        else
            cw_srv_drop(&L->srv, i);
    }
    json_decref(answer);
    each_child(L, clear_child);
    L->round_active = false;
}

static void maybe_finish(struct launcher *L, uint64_t now_ms)
{
    for (unsigned s = 0; s < L->sys->n_switches; s++)
        if (L->sw[s].ch.stats_pending)
            return;
    for (unsigned n = 0; n < L->n_nics; n++)
        if (L->nic[n].dev.stats_pending)
            return;
    finish(L, now_ms);
}

static void ask(struct launcher *L, struct child *c)
{
    json_decref(c->stats);
    c->stats = NULL;
    c->stats_pending = false;
    if (!askable(c))
        return;
    json_t *m = json_pack("{s:s, s:I}", "op", "stats", "seq", (json_int_t)L->round_seq);
    if (m && launcher_ctl_send(L, c, m, NULL, 0) == 0)
        c->stats_pending = true;
    json_decref(m);
}

void stats_request(struct launcher *L, int client, uint64_t now_ms)
{
    L->srv.c[client].waiting = true;
    if (L->round_active)
        return; /* answered with the round under way */
    L->round_active = true;
    L->round_seq++;
    L->round_deadline_ms = now_ms + STATS_TIMEOUT_MS;
    each_child(L, ask);
    maybe_finish(L, now_ms);
}

bool stats_reply(struct launcher *L, struct child *c, json_t *msg)
{
    if (!L->round_active || !c->stats_pending)
        return false;
    json_t *seq = json_object_get(msg, "seq");
    if (seq && (!json_is_integer(seq) || json_integer_value(seq) != (json_int_t)L->round_seq))
        return false; /* late answer to a round already given up */
    c->stats_pending = false;
    json_decref(c->stats);
    c->stats = json_incref(msg);
    maybe_finish(L, cw_now_ms());
    return true;
}

void stats_child_gone(struct launcher *L, struct child *c)
{
    if (!c->stats_pending)
        return;
    c->stats_pending = false;
    if (L->round_active)
        maybe_finish(L, cw_now_ms());
}

void stats_tick(struct launcher *L, uint64_t now_ms)
{
    if (L->round_active && now_ms >= L->round_deadline_ms)
        finish(L, now_ms);
}
