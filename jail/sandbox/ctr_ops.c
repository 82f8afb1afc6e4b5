/*
 * ctr_ops.c - see ctr_ops.h. Each helper builds its request on the stack (pointing at the
 * caller's strings: ctr_call serializes before returning) and registers a small heap
 * "trampoline" that turns the generic reply into the typed callback.
 */
#include "ctr_ops.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"
#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"
#include "github.com/containerd/containerd/api/services/leases/v1/leases.pb-c.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb-c.h"
#include "github.com/containerd/containerd/api/services/tasks/v1/tasks.pb-c.h"
#include "github.com/containerd/containerd/api/services/version/v1/version.pb-c.h"
#include "github.com/containerd/containerd/runtime/v2/runc/options/oci.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/empty.pb-c.h"

#define SVC_CONTAINERS "/containerd.services.containers.v1.Containers/"
#define SVC_CONTENT    "/containerd.services.content.v1.Content/"
#define SVC_IMAGES     "/containerd.services.images.v1.Images/"
#define SVC_LEASES     "/containerd.services.leases.v1.Leases/"
#define SVC_SNAPSHOTS  "/containerd.services.snapshots.v1.Snapshots/"
#define SVC_TASKS      "/containerd.services.tasks.v1.Tasks/"
#define SVC_VERSION    "/containerd.services.version.v1.Version/"

#define TYPE_SPEC      "types.containerd.io/opencontainers/runtime-spec/1/Spec"
#define TYPE_PROCESS   "types.containerd.io/opencontainers/runtime-spec/1/Process"
#define TYPE_RUNC_OPTS "containerd.runc.v1.Options"

/* protobuf-c wants char * for strings it only reads when packing. */
#define S(x) ((char *)((x) ? (x) : ""))

/* ---- trampolines ---- */

enum tkind { T_DONE, T_PID_CREATE, T_PID_START, T_EXIT_WAIT, T_EXIT_DELETE, T_MOUNTS, T_VERSION };

struct tramp {
	enum tkind kind;
	bool not_found_ok;
	union {
		ctr_done_cb done;
		ctr_pid_cb pid;
		ctr_exit_cb exit;
		ctr_mounts_cb mounts;
		ctr_str_cb str;
	} fn;
	void *arg;
};

static struct ctr_mounts *mounts_copy(const ProtobufCMessage *reply)
{
	/* The reply belongs to the client: give the caller its own copy (pack + unpack). */
	size_t len = protobuf_c_message_get_packed_size(reply);
	uint8_t *buf = malloc(len ? len : 1);
	struct ctr_mounts *m = calloc(1, sizeof *m);
	if (!buf || !m)
		goto fail;
	protobuf_c_message_pack(reply, buf);
	m->msg = protobuf_c_message_unpack(reply->descriptor, NULL, len, buf);
	if (!m->msg)
		goto fail;
	free(buf);
	Containerd__Services__Snapshots__V1__PrepareSnapshotResponse *r = (void *)m->msg;
	m->n = r->n_mounts;
	m->mounts = r->mounts;
	return m;
fail:
	free(buf);
	free(m);
	return NULL;
}

void ctr_mounts_free(struct ctr_mounts *m)
{
	if (!m)
		return;
	if (m->msg)
		protobuf_c_message_free_unpacked(m->msg, NULL);
	free(m);
}

static void tramp_cb(void *p, const struct ctr_status *st_in, ProtobufCMessage *reply)
{
	struct tramp *t = p;
	struct ctr_status tmp;
	const struct ctr_status *st = st_in;
	if (t->not_found_ok && st->code == CTR_NOT_FOUND) {
		tmp = *st_in;
		tmp.code = CTR_OK;
		snprintf(tmp.details, sizeof tmp.details, "not found");
		st = &tmp;
	}
	bool ok = st_in->code == CTR_OK && reply;
	switch (t->kind) {
	case T_DONE:
		t->fn.done(t->arg, st);
		break;
	case T_PID_CREATE:
		t->fn.pid(t->arg, st,
			  ok ? ((Containerd__Services__Tasks__V1__CreateTaskResponse *)reply)->pid
			     : 0);
		break;
	case T_PID_START:
		t->fn.pid(t->arg, st,
			  ok ? ((Containerd__Services__Tasks__V1__StartResponse *)reply)->pid : 0);
		break;
	case T_EXIT_WAIT:
		t->fn.exit(
		    t->arg, st,
		    ok ? ((Containerd__Services__Tasks__V1__WaitResponse *)reply)->exit_status : 0);
		break;
	case T_EXIT_DELETE:
		t->fn.exit(
		    t->arg, st,
		    ok ? ((Containerd__Services__Tasks__V1__DeleteResponse *)reply)->exit_status
		       : 0);
		break;
	case T_MOUNTS: {
		struct ctr_mounts *m = ok ? mounts_copy(reply) : NULL;
		if (ok && !m) {
			tmp.code = CTR_RESOURCE_EXHAUSTED;
			snprintf(tmp.details, sizeof tmp.details, "out of memory copying mounts");
			st = &tmp;
		}
		t->fn.mounts(t->arg, st, m);
		break;
	}
	case T_VERSION: {
		char v[256] = "";
		if (ok) {
			Containerd__Services__Version__V1__VersionResponse *r = (void *)reply;
			snprintf(v, sizeof v, "%s %s", r->version, r->revision);
		}
		t->fn.str(t->arg, st, ok ? v : NULL);
		break;
	}
	}
	free(t);
}

static int start(struct ctr_client *c, const char *lease, bool use_lease, const char *method,
		 const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
		 int timeout_ms, struct tramp t, struct err *err)
{
	struct tramp *h = malloc(sizeof *h);
	if (!h)
		return err_set(err, ENOMEM, "out of memory");
	*h = t;
	int r = use_lease ? ctr_call_lease(c, lease, method, req, reply_desc, timeout_ms, tramp_cb,
					   h, err)
			  : ctr_call(c, method, req, reply_desc, timeout_ms, tramp_cb, h, err);
	if (r < 0)
		free(h);
	return r;
}

#define DONE(cb, arg) ((struct tramp){.kind = T_DONE, .fn.done = (cb), .arg = (arg)})
#define DONE_NF(cb, arg)                                                                           \
	((struct tramp){.kind = T_DONE, .not_found_ok = true, .fn.done = (cb), .arg = (arg)})
#define EMPTY_DESC (&google__protobuf__empty__descriptor)

/* Packs runc Options into *any; *buf must be freed by the caller. */
static int runc_options(const struct ctr_runtime *rt, Google__Protobuf__Any *any, uint8_t **buf,
			struct err *err)
{
	Containerd__Runc__V1__Options o = CONTAINERD__RUNC__V1__OPTIONS__INIT;
	o.binary_name = S(rt->binary_name);
	o.root = S(rt->root);
	size_t len = protobuf_c_message_get_packed_size(&o.base);
	*buf = malloc(len ? len : 1);
	if (!*buf)
		return err_set(err, ENOMEM, "out of memory");
	protobuf_c_message_pack(&o.base, *buf);
	any->type_url = TYPE_RUNC_OPTS;
	any->value.data = *buf;
	any->value.len = len;
	return 0;
}

/* ---- version ---- */

int ctr_version(struct ctr_client *c, int timeout_ms, ctr_str_cb cb, void *arg, struct err *err)
{
	Google__Protobuf__Empty req = GOOGLE__PROTOBUF__EMPTY__INIT;
	return start(c, NULL, false, SVC_VERSION "Version", &req.base,
		     &containerd__services__version__v1__version_response__descriptor, timeout_ms,
		     (struct tramp){.kind = T_VERSION, .fn.str = cb, .arg = arg}, err);
}

/* ---- containers ---- */

int ctr_container_create(struct ctr_client *c, const struct ctr_container_spec *s, int timeout_ms,
			 ctr_done_cb cb, void *arg, struct err *err)
{
	if (!s || !s->id || !*s->id || !s->oci_spec || !cb)
		return err_set(err, EINVAL, "ctr_container_create: invalid argument");
	size_t nl = 0;
	if (s->labels)
		while (s->labels[nl * 2] && s->labels[nl * 2 + 1])
			nl++;
	Containerd__Services__Containers__V1__Container__LabelsEntry *le =
	    calloc(nl ? nl : 1, sizeof *le);
	Containerd__Services__Containers__V1__Container__LabelsEntry **lp =
	    calloc(nl ? nl : 1, sizeof *lp);
	uint8_t *optbuf = NULL;
	int r = -1;
	if (!le || !lp) {
		err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nl; i++) {
		Containerd__Services__Containers__V1__Container__LabelsEntry e =
		    CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__LABELS_ENTRY__INIT;
		e.key = S(s->labels[i * 2]);
		e.value = S(s->labels[i * 2 + 1]);
		le[i] = e;
		lp[i] = &le[i];
	}
	Google__Protobuf__Any opts = GOOGLE__PROTOBUF__ANY__INIT;
	if (runc_options(&s->rt, &opts, &optbuf, err) < 0)
		goto out;
	Containerd__Services__Containers__V1__Container__Runtime rt =
	    CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__RUNTIME__INIT;
	rt.name = CTR_RUNTIME_RUNC_V2;
	rt.options = &opts;
	Google__Protobuf__Any spec = GOOGLE__PROTOBUF__ANY__INIT;
	spec.type_url = TYPE_SPEC;
	spec.value.data = (uint8_t *)s->oci_spec;
	spec.value.len = s->oci_spec_len;
	Containerd__Services__Containers__V1__Container ct =
	    CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__INIT;
	ct.id = S(s->id);
	ct.image = S(s->image);
	ct.n_labels = nl;
	ct.labels = lp;
	ct.runtime = &rt;
	ct.spec = &spec;
	ct.snapshotter = S(s->snapshotter ? s->snapshotter : CTR_SNAPSHOTTER_DEFAULT);
	ct.snapshot_key = S(s->snapshot_key ? s->snapshot_key : s->id);
	Containerd__Services__Containers__V1__CreateContainerRequest req =
	    CONTAINERD__SERVICES__CONTAINERS__V1__CREATE_CONTAINER_REQUEST__INIT;
	req.container = &ct;
	r = start(c, NULL, false, SVC_CONTAINERS "Create", &req.base,
		  &containerd__services__containers__v1__create_container_response__descriptor,
		  timeout_ms, DONE(cb, arg), err);
out:
	free(optbuf);
	free(lp);
	free(le);
	return r;
}

int ctr_container_delete(struct ctr_client *c, const char *id, int timeout_ms, ctr_done_cb cb,
			 void *arg, struct err *err)
{
	Containerd__Services__Containers__V1__DeleteContainerRequest req =
	    CONTAINERD__SERVICES__CONTAINERS__V1__DELETE_CONTAINER_REQUEST__INIT;
	req.id = S(id);
	return start(c, NULL, false, SVC_CONTAINERS "Delete", &req.base, EMPTY_DESC, timeout_ms,
		     DONE_NF(cb, arg), err);
}

/* ---- snapshots ---- */

int ctr_snapshot_prepare(struct ctr_client *c, const char *snapshotter, const char *key,
			 const char *parent, const char *lease, int timeout_ms, ctr_mounts_cb cb,
			 void *arg, struct err *err)
{
	if (!key || !*key || !cb)
		return err_set(err, EINVAL, "ctr_snapshot_prepare: invalid argument");
	Containerd__Services__Snapshots__V1__PrepareSnapshotRequest req =
	    CONTAINERD__SERVICES__SNAPSHOTS__V1__PREPARE_SNAPSHOT_REQUEST__INIT;
	req.snapshotter = S(snapshotter ? snapshotter : CTR_SNAPSHOTTER_DEFAULT);
	req.key = S(key);
	req.parent = S(parent);
	return start(c, lease, lease != NULL, SVC_SNAPSHOTS "Prepare", &req.base,
		     &containerd__services__snapshots__v1__prepare_snapshot_response__descriptor,
		     timeout_ms, (struct tramp){.kind = T_MOUNTS, .fn.mounts = cb, .arg = arg},
		     err);
}

int ctr_snapshot_remove(struct ctr_client *c, const char *snapshotter, const char *key,
			int timeout_ms, ctr_done_cb cb, void *arg, struct err *err)
{
	Containerd__Services__Snapshots__V1__RemoveSnapshotRequest req =
	    CONTAINERD__SERVICES__SNAPSHOTS__V1__REMOVE_SNAPSHOT_REQUEST__INIT;
	req.snapshotter = S(snapshotter ? snapshotter : CTR_SNAPSHOTTER_DEFAULT);
	req.key = S(key);
	return start(c, NULL, false, SVC_SNAPSHOTS "Remove", &req.base, EMPTY_DESC, timeout_ms,
		     DONE_NF(cb, arg), err);
}

/* ---- tasks ---- */

int ctr_task_create(struct ctr_client *c, const struct ctr_task_spec *s, int timeout_ms,
		    ctr_pid_cb cb, void *arg, struct err *err)
{
	if (!s || !s->container_id || !*s->container_id || !cb)
		return err_set(err, EINVAL, "ctr_task_create: invalid argument");
	uint8_t *optbuf = NULL;
	Google__Protobuf__Any opts = GOOGLE__PROTOBUF__ANY__INIT;
	if (runc_options(&s->rt, &opts, &optbuf, err) < 0)
		return -1;
	Containerd__Services__Tasks__V1__CreateTaskRequest req =
	    CONTAINERD__SERVICES__TASKS__V1__CREATE_TASK_REQUEST__INIT;
	req.container_id = S(s->container_id);
	if (s->rootfs) {
		req.n_rootfs = s->rootfs->n;
		req.rootfs = s->rootfs->mounts;
	}
	/* The fields are named stdin/stdout/stderr: glibc's macros expand to themselves. */
	req.stdin = S(s->stdin_path);
	req.stdout = S(s->stdout_path);
	req.stderr = S(s->stderr_path);
	req.terminal = s->terminal;
	req.options = &opts;
	int r =
	    start(c, NULL, false, SVC_TASKS "Create", &req.base,
		  &containerd__services__tasks__v1__create_task_response__descriptor, timeout_ms,
		  (struct tramp){.kind = T_PID_CREATE, .fn.pid = cb, .arg = arg}, err);
	free(optbuf);
	return r;
}

int ctr_task_start(struct ctr_client *c, const char *container_id, const char *exec_id,
		   int timeout_ms, ctr_pid_cb cb, void *arg, struct err *err)
{
	Containerd__Services__Tasks__V1__StartRequest req =
	    CONTAINERD__SERVICES__TASKS__V1__START_REQUEST__INIT;
	req.container_id = S(container_id);
	req.exec_id = S(exec_id);
	return start(c, NULL, false, SVC_TASKS "Start", &req.base,
		     &containerd__services__tasks__v1__start_response__descriptor, timeout_ms,
		     (struct tramp){.kind = T_PID_START, .fn.pid = cb, .arg = arg}, err);
}

int ctr_task_kill(struct ctr_client *c, const char *container_id, const char *exec_id, int sig,
		  bool all, int timeout_ms, ctr_done_cb cb, void *arg, struct err *err)
{
	if (sig <= 0)
		return err_set(err, EINVAL, "ctr_task_kill: invalid signal %d", sig);
	Containerd__Services__Tasks__V1__KillRequest req =
	    CONTAINERD__SERVICES__TASKS__V1__KILL_REQUEST__INIT;
	req.container_id = S(container_id);
	req.exec_id = S(exec_id);
	req.signal = (uint32_t)sig;
	req.all = all;
	return start(c, NULL, false, SVC_TASKS "Kill", &req.base, EMPTY_DESC, timeout_ms,
		     DONE(cb, arg), err);
}

int ctr_task_wait(struct ctr_client *c, const char *container_id, const char *exec_id,
		  int timeout_ms, ctr_exit_cb cb, void *arg, struct err *err)
{
	Containerd__Services__Tasks__V1__WaitRequest req =
	    CONTAINERD__SERVICES__TASKS__V1__WAIT_REQUEST__INIT;
	req.container_id = S(container_id);
	req.exec_id = S(exec_id);
	return start(c, NULL, false, SVC_TASKS "Wait", &req.base,
		     &containerd__services__tasks__v1__wait_response__descriptor, timeout_ms,
		     (struct tramp){.kind = T_EXIT_WAIT, .fn.exit = cb, .arg = arg}, err);
}

int ctr_task_delete(struct ctr_client *c, const char *container_id, int timeout_ms, ctr_exit_cb cb,
		    void *arg, struct err *err)
{
	Containerd__Services__Tasks__V1__DeleteTaskRequest req =
	    CONTAINERD__SERVICES__TASKS__V1__DELETE_TASK_REQUEST__INIT;
	req.container_id = S(container_id);
	return start(c, NULL, false, SVC_TASKS "Delete", &req.base,
		     &containerd__services__tasks__v1__delete_response__descriptor, timeout_ms,
		     (struct tramp){.kind = T_EXIT_DELETE, .fn.exit = cb, .arg = arg}, err);
}

int ctr_exec(struct ctr_client *c, const struct ctr_exec_spec *s, int timeout_ms, ctr_done_cb cb,
	     void *arg, struct err *err)
{
	if (!s || !s->container_id || !s->exec_id || !*s->exec_id || !s->process_json || !cb)
		return err_set(err, EINVAL, "ctr_exec: invalid argument");
	Google__Protobuf__Any spec = GOOGLE__PROTOBUF__ANY__INIT;
	spec.type_url = TYPE_PROCESS;
	spec.value.data = (uint8_t *)s->process_json;
	spec.value.len = s->process_json_len;
	Containerd__Services__Tasks__V1__ExecProcessRequest req =
	    CONTAINERD__SERVICES__TASKS__V1__EXEC_PROCESS_REQUEST__INIT;
	req.container_id = S(s->container_id);
	req.exec_id = S(s->exec_id);
	req.stdin = S(s->stdin_path);
	req.stdout = S(s->stdout_path);
	req.stderr = S(s->stderr_path);
	req.terminal = s->terminal;
	req.spec = &spec;
	return start(c, NULL, false, SVC_TASKS "Exec", &req.base, EMPTY_DESC, timeout_ms,
		     DONE(cb, arg), err);
}

int ctr_process_delete(struct ctr_client *c, const char *container_id, const char *exec_id,
		       int timeout_ms, ctr_exit_cb cb, void *arg, struct err *err)
{
	Containerd__Services__Tasks__V1__DeleteProcessRequest req =
	    CONTAINERD__SERVICES__TASKS__V1__DELETE_PROCESS_REQUEST__INIT;
	req.container_id = S(container_id);
	req.exec_id = S(exec_id);
	return start(c, NULL, false, SVC_TASKS "DeleteProcess", &req.base,
		     &containerd__services__tasks__v1__delete_response__descriptor, timeout_ms,
		     (struct tramp){.kind = T_EXIT_DELETE, .fn.exit = cb, .arg = arg}, err);
}

/* ---- leases ---- */

int ctr_lease_create(struct ctr_client *c, const char *id, int expire_s, int timeout_ms,
		     ctr_done_cb cb, void *arg, struct err *err)
{
	if (!id || !*id || !cb)
		return err_set(err, EINVAL, "ctr_lease_create: invalid argument");
	Containerd__Services__Leases__V1__CreateRequest__LabelsEntry le =
	    CONTAINERD__SERVICES__LEASES__V1__CREATE_REQUEST__LABELS_ENTRY__INIT;
	Containerd__Services__Leases__V1__CreateRequest__LabelsEntry *lp = &le;
	char when[64];
	Containerd__Services__Leases__V1__CreateRequest req =
	    CONTAINERD__SERVICES__LEASES__V1__CREATE_REQUEST__INIT;
	req.id = S(id);
	if (expire_s > 0) {
		time_t t = time(NULL) + expire_s;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
		le.key = "containerd.io/gc.expire";
		le.value = when;
		req.n_labels = 1;
		req.labels = &lp;
	}
	return start(c, "", true, SVC_LEASES "Create", &req.base,
		     &containerd__services__leases__v1__create_response__descriptor, timeout_ms,
		     DONE(cb, arg), err);
}

int ctr_lease_delete(struct ctr_client *c, const char *id, bool sync, int timeout_ms,
		     ctr_done_cb cb, void *arg, struct err *err)
{
	Containerd__Services__Leases__V1__DeleteRequest req =
	    CONTAINERD__SERVICES__LEASES__V1__DELETE_REQUEST__INIT;
	req.id = S(id);
	req.sync = sync;
	return start(c, "", true, SVC_LEASES "Delete", &req.base, EMPTY_DESC, timeout_ms,
		     DONE_NF(cb, arg), err);
}

/* ---- image → chainID ---- */

#define MAX_INDEX_CHILDREN 16

enum chain_step { CH_IMAGE, CH_INDEX, CH_MANIFEST, CH_CONFIG };

struct chain {
	struct ctr_client *c;
	char *image;
	char *label; /* containerd.io/gc.ref.snapshot.<snapshotter> */
	int timeout_ms;
	ctr_str_cb cb;
	void *arg;
	enum chain_step step;
	char *children[MAX_INDEX_CHILDREN]; /* manifests of an index, in label order */
	size_t nchildren, next_child;
};

static void chain_free(struct chain *ch)
{
	for (size_t i = 0; i < ch->nchildren; i++)
		free(ch->children[i]);
	free(ch->image);
	free(ch->label);
	free(ch);
}

static void chain_finish(struct chain *ch, const struct ctr_status *st, const char *value)
{
	ch->cb(ch->arg, st, value);
	chain_free(ch);
}

static void chain_fail(struct chain *ch, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void chain_fail(struct chain *ch, int code, const char *fmt, ...)
{
	struct ctr_status st = {.code = code};
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st.details, sizeof st.details, fmt, ap);
	va_end(ap);
	chain_finish(ch, &st, NULL);
}

static void chain_cb(void *p, const struct ctr_status *st, ProtobufCMessage *reply);

static void chain_info(struct chain *ch, enum chain_step step, const char *digest)
{
	struct err err;
	Containerd__Services__Content__V1__InfoRequest req =
	    CONTAINERD__SERVICES__CONTENT__V1__INFO_REQUEST__INIT;
	req.digest = S(digest);
	ch->step = step;
	if (ctr_call(ch->c, SVC_CONTENT "Info", &req.base,
		     &containerd__services__content__v1__info_response__descriptor, ch->timeout_ms,
		     chain_cb, ch, &err) < 0)
		chain_fail(ch, CTR_CANCELLED, "%s", err.msg);
}

static const char *info_label(const Containerd__Services__Content__V1__Info *info, const char *k)
{
	for (size_t i = 0; info && i < info->n_labels; i++)
		if (strcmp(info->labels[i]->key, k) == 0)
			return info->labels[i]->value;
	return NULL;
}

static bool is_index(const char *media_type)
{
	return strcmp(media_type, "application/vnd.oci.image.index.v1+json") == 0 ||
	       strcmp(media_type, "application/vnd.docker.distribution.manifest.list.v2+json") == 0;
}

/* Next manifest of an index, or NOT_FOUND when none is unpacked. */
static void chain_next_child(struct chain *ch)
{
	if (ch->next_child < ch->nchildren) {
		chain_info(ch, CH_MANIFEST, ch->children[ch->next_child++]);
		return;
	}
	chain_fail(ch, CTR_NOT_FOUND, "image %s: no manifest unpacked for this snapshotter",
		   ch->image);
}

static void chain_cb(void *p, const struct ctr_status *st, ProtobufCMessage *reply)
{
	struct chain *ch = p;
	if (st->code != CTR_OK) {
		/* a missing child of an index is skipped; anything else ends the chain */
		if (st->code == CTR_NOT_FOUND && ch->step != CH_IMAGE && ch->nchildren) {
			chain_next_child(ch);
			return;
		}
		chain_finish(ch, st, NULL);
		return;
	}
	if (ch->step == CH_IMAGE) {
		Containerd__Services__Images__V1__GetImageResponse *r = (void *)reply;
		if (!r->image || !r->image->target || !*r->image->target->digest) {
			chain_fail(ch, CTR_NOT_FOUND, "image %s has no target", ch->image);
			return;
		}
		chain_info(ch, is_index(r->image->target->media_type) ? CH_INDEX : CH_MANIFEST,
			   r->image->target->digest);
		return;
	}
	Containerd__Services__Content__V1__Info *info =
	    ((Containerd__Services__Content__V1__InfoResponse *)reply)->info;
	switch (ch->step) {
	case CH_INDEX: {
		/* children: containerd.io/gc.ref.content.m.<n>, ordered by n */
		static const char pfx[] = "containerd.io/gc.ref.content.m.";
		for (unsigned n = 0; n < MAX_INDEX_CHILDREN; n++) {
			char key[sizeof pfx + 12];
			snprintf(key, sizeof key, "%s%u", pfx, n);
			const char *v = info_label(info, key);
			if (!v)
				continue;
			char *d = strdup(v);
			if (!d) {
				chain_fail(ch, CTR_RESOURCE_EXHAUSTED, "%s", "out of memory");
				return;
			}
			ch->children[ch->nchildren++] = d;
		}
		chain_next_child(ch);
		return;
	}
	case CH_MANIFEST: {
		const char *cfg = info_label(info, "containerd.io/gc.ref.content.config");
		if (!cfg) {
			if (ch->nchildren) {
				chain_next_child(ch);
				return;
			}
			chain_fail(ch, CTR_NOT_FOUND, "image %s: manifest has no config label",
				   ch->image);
			return;
		}
		chain_info(ch, CH_CONFIG, cfg);
		return;
	}
	case CH_CONFIG: {
		const char *chain_id = info_label(info, ch->label);
		if (!chain_id) {
			if (ch->nchildren) {
				chain_next_child(ch);
				return;
			}
			chain_fail(ch, CTR_NOT_FOUND,
				   "image %s is not unpacked for this snapshotter", ch->image);
			return;
		}
		chain_finish(ch, st, chain_id);
		return;
	}
	case CH_IMAGE:
		break;
	}
}

int ctr_image_chain_id(struct ctr_client *c, const char *image, const char *snapshotter,
		       int timeout_ms, ctr_str_cb cb, void *arg, struct err *err)
{
	if (!image || !*image || !cb)
		return err_set(err, EINVAL, "ctr_image_chain_id: invalid argument");
	const char *sn = snapshotter ? snapshotter : CTR_SNAPSHOTTER_DEFAULT;
	struct chain *ch = calloc(1, sizeof *ch);
	size_t ll = strlen(sn) + sizeof "containerd.io/gc.ref.snapshot.";
	if (ch) {
		ch->image = strdup(image);
		ch->label = malloc(ll);
	}
	if (!ch || !ch->image || !ch->label) {
		if (ch)
			chain_free(ch);
		return err_set(err, ENOMEM, "out of memory");
	}
	snprintf(ch->label, ll, "containerd.io/gc.ref.snapshot.%s", sn);
	ch->c = c;
	ch->timeout_ms = timeout_ms;
	ch->cb = cb;
	ch->arg = arg;
	ch->step = CH_IMAGE;
	Containerd__Services__Images__V1__GetImageRequest req =
	    CONTAINERD__SERVICES__IMAGES__V1__GET_IMAGE_REQUEST__INIT;
	req.name = S(image);
	if (ctr_call(c, SVC_IMAGES "Get", &req.base,
		     &containerd__services__images__v1__get_image_response__descriptor, timeout_ms,
		     chain_cb, ch, err) < 0) {
		chain_free(ch);
		return -1;
	}
	return 0;
}
