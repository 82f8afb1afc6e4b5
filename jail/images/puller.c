/*
 * puller.c - see puller.h.
 *
 * Jobs live in one list under `mu`: QUEUED -> RUNNING (a pull thread) -> DONE (moved to the
 * done list, eventfd written) -> the loop runs the waiters and frees the job. Waiters belong
 * to their job and are touched only by the loop thread.
 *
 * Image GC: use marks (one per image a task used or a pull fetched, under `mu`) give the GC the
 * last uses not yet written as labels and the names it must leave alone; a mark with
 * `write_queued` asks a pull thread to write the label. A pull thread runs a GC pass when one is
 * due (after a successful pull, or PULLER_GC_PERIOD_S after the last) and no other runs; it
 * waits with a deadline for that. Names the GC removed go back to the loop on the `removed`
 * list, through the same eventfd as finished jobs.
 */
#include "puller.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "imagegc.h"
#include "imageuser.h"
#include "log.h"
#include "pull.h"
#include "registry.h"

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct pull_wait {
	struct pull_wait *next;
	puller_cb cb; /* NULL once cancelled */
	void *arg;
};

struct job {
	struct job *next;
	enum job_state state;
	char name[320];
	char user[33];	    /* non-empty: a USER= lookup, not a pull */
	char progress[160]; /* under mu: what the pull is doing, for the monitor */
	struct puller *p;
	struct image_source src;
	bool force;
	struct pull_wait *waiters; /* loop thread only */
	/* result, written by the pull thread before DONE */
	int ok;
	char chain[72];
	char msg[1024];
};

struct force_mark {
	struct force_mark *next;
	char *name;
	int64_t at_ms;
};

struct use_mark {
	struct use_mark *next;
	char *name;
	int64_t used_at;    /* unix seconds of the last use */
	int64_t written_ms; /* monotonic: when the label write was queued, 0 = never */
	bool write_queued;
};

struct removed_name {
	struct removed_name *next;
	char name[320];
};

struct puller {
	struct puller_config cfg;
	char *local, *plain, *auth_file, *ca, *snap, *prefix;
	struct ctr_client *c;
	struct evloop *ev;
	struct ev_watch *watch;
	int efd;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stopping;
	struct job *jobs; /* queued and running */
	struct job *done;
	pthread_t *th;
	int nth;
	uint64_t pulls;
	struct force_mark *marks;
	struct reg_cred *creds;
	char *credbuf;
	int ncreds;
	/* image GC, under mu */
	char *keep;
	bool gc_on;
	bool gc_due;
	bool gc_running;
	int64_t gc_next_ms;
	uint64_t gc_passes;
	struct use_mark *uses;
	struct removed_name *removed;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int puller_read_auth(const char *path, struct reg_cred **creds, char **buf, struct err *err)
{
	*creds = NULL;
	*buf = NULL;
	if (!path || !*path)
		return 0;
	FILE *f = fopen(path, "re");
	if (!f)
		return err_sys(err, errno, "opening registry auth file %s", path);
	char *data = calloc(1, 65537);
	size_t len = data ? fread(data, 1, 65536, f) : 0;
	fclose(f);
	if (!data)
		return err_set(err, ENOMEM, "out of memory");
	data[len] = '\0';
	size_t cap = 16, n = 0;
	struct reg_cred *v = calloc(cap, sizeof *v);
	if (!v) {
		free(data);
		return err_set(err, ENOMEM, "out of memory");
	}
	char *save = NULL;
	int lineno = 0;
	for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		char *p = line + strspn(line, " \t");
		if (!*p || *p == '#')
			continue;
		char *fields[3];
		int k = 0;
		char *s2 = NULL;
		for (char *t = strtok_r(p, " \t\r", &s2); t && k < 3;
		     t = strtok_r(NULL, " \t\r", &s2))
			fields[k++] = t;
		if (k != 3 || n == cap) {
			free(v);
			free(data);
			return err_set(err, EINVAL, "%s: line %d: want \"host user password\"",
				       path, lineno);
		}
		v[n].host = fields[0];
		v[n].user = fields[1];
		v[n].pass = fields[2];
		n++;
	}
	*creds = v;
	*buf = data;
	return (int)n;
}

/* ---- use marks (callers hold mu) ---- */

static struct use_mark *use_find(struct puller *p, const char *name, bool create)
{
	struct use_mark *m;
	for (m = p->uses; m; m = m->next)
		if (strcmp(m->name, name) == 0)
			return m;
	if (!create)
		return NULL;
	m = calloc(1, sizeof *m);
	if (!m || !(m->name = strdup(name))) {
		free(m);
		return NULL;
	}
	m->next = p->uses;
	p->uses = m;
	return m;
}

static void use_drop(struct puller *p, const char *name)
{
	for (struct use_mark **pp = &p->uses; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->name, name) == 0) {
			struct use_mark *m = *pp;
			*pp = m->next;
			free(m->name);
			free(m);
			return;
		}
}

/* ---- the GC (a pull thread, mu not held) ---- */

static bool gc_busy(void *arg, const char *name)
{
	struct puller *p = arg;
	int64_t now = (int64_t)time(NULL);
	pthread_mutex_lock(&p->mu);
	bool busy = false;
	for (struct job *j = p->jobs; j && !busy; j = j->next)
		busy = strcmp(j->name, name) == 0;
	struct use_mark *m = busy ? NULL : use_find(p, name, false);
	if (m && now - m->used_at < PULLER_USED_GRACE_S)
		busy = true;
	pthread_mutex_unlock(&p->mu);
	return busy;
}

static int64_t gc_last_used(void *arg, const char *name)
{
	struct puller *p = arg;
	pthread_mutex_lock(&p->mu);
	struct use_mark *m = use_find(p, name, false);
	int64_t t = m ? m->used_at : 0;
	pthread_mutex_unlock(&p->mu);
	return t;
}

/* One pass; true when it kept a candidate because it was busy (a grace may end). */
static bool run_gc(struct puller *p)
{
	struct image_gc_policy pol = {
	    .unused_ttl_s = p->cfg.image_unused_ttl_s,
	    .store_max = p->cfg.image_store_max,
	    .keep = p->keep,
	    .busy = gc_busy,
	    .last_used = gc_last_used,
	    .arg = p,
	};
	struct image_gc_report rep;
	struct err e;
	err_clear(&e);
	if (image_gc(p->c, &pol, &rep, &e) < 0) {
		log_warn("image gc: %s", e.msg);
		image_gc_report_free(&rep);
		return false;
	}
	for (size_t i = 0; i < rep.n_removed; i++) {
		const struct image_gc_removal *r = &rep.removed[i];
		if (r->why == IMAGE_GC_UNUSED)
			log_info("image gc: removed %s (%s): unused for %lld days", r->name,
				 r->digest, (long long)(r->idle_s / 86400));
		else
			log_info("image gc: removed %s (%s): store over cap (IMAGE_STORE_MAX %lld "
				 "MB), least recently used, %lld MB freed",
				 r->name, r->digest, (long long)(pol.store_max >> 20),
				 (long long)(r->freed >> 20));
	}
	if (rep.failed)
		log_warn("image gc: %zu removal(s) failed: %s", rep.failed, e.msg);
	bool over = pol.store_max > 0 && rep.store_after > pol.store_max;
	if (rep.n_removed || rep.failed || over)
		log_info("image gc: %zu images, store %lld MB -> %lld MB (cap %lld MB), %zu "
			 "removed, %zu kept in use%s",
			 rep.images, (long long)(rep.store_before >> 20),
			 (long long)(rep.store_after >> 20), (long long)(pol.store_max >> 20),
			 rep.n_removed, rep.kept, over ? ": still over the cap" : "");
	else
		log_debug("image gc: %zu images, store %lld MB, nothing to remove", rep.images,
			  (long long)(rep.store_before >> 20));
	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < rep.n_removed; i++) {
		use_drop(p, rep.removed[i].name);
		struct removed_name *rn = calloc(1, sizeof *rn);
		if (!rn)
			continue;
		snprintf(rn->name, sizeof rn->name, "%s", rep.removed[i].name);
		rn->next = p->removed;
		p->removed = rn;
	}
	pthread_mutex_unlock(&p->mu);
	if (rep.n_removed) {
		uint64_t one = 1;
		if (write(p->efd, &one, sizeof one) < 0) { /* saturated: readable anyway */
		}
	}
	bool kept = rep.kept > 0;
	image_gc_report_free(&rep);
	return kept;
}

/* ---- the pull thread ---- */

static void progress_log(void *arg, const char *what)
{
	struct job *j = arg;
	log_debug("pull %s: %s", j->name, what);
	pthread_mutex_lock(&j->p->mu);
	snprintf(j->progress, sizeof j->progress, "%s", what);
	pthread_mutex_unlock(&j->p->mu);
}

static void run_user_job(struct puller *p, struct job *j)
{
	struct image_user u;
	struct err e;
	err_clear(&e);
	if (image_user_lookup(p->c, j->name, j->user, &u, &e) < 0) {
		snprintf(j->msg, sizeof j->msg, "%s", e.msg);
		return;
	}
	if (u.uid < 1000) {
		snprintf(j->msg, sizeof j->msg,
			 "user %s of image %s has uid %u: system users (below 1000) cannot run "
			 "tasks",
			 j->user, j->name, u.uid);
		return;
	}
	j->ok = 1;
	snprintf(j->chain, sizeof j->chain, "%u:%u", u.uid, u.gid);
	snprintf(j->msg, sizeof j->msg, "user %s of image %s is %u:%u", j->user, j->name, u.uid,
		 u.gid);
}

static void run_job(struct puller *p, struct reg_client *reg, struct job *j)
{
	if (j->user[0]) {
		run_user_job(p, j);
		return;
	}
	struct pull_env env = {
	    .c = p->c,
	    .reg = reg,
	    .snapshotter = p->snap,
	    .key_prefix = p->prefix,
	    .max_image_size = p->cfg.max_image_size,
	    .progress = progress_log,
	    .parg = j,
	};
	struct pull_result res;
	struct err e;
	err_clear(&e);
	const struct image_ref *local = &j->src.local, *up = &j->src.upstream;
	bool have_up = up->host[0] != '\0';
	int64_t t0 = now_ms();
	int rc;
	const char *from = "local registry";
	if (j->force && have_up) {
		from = "upstream";
		rc = image_pull(&env, up, j->name, local, &res, &e);
	} else {
		rc = image_pull(&env, local, j->name, NULL, &res, &e);
		if (rc < 0 && e.code == ENOENT && have_up) {
			from = "upstream";
			err_clear(&e);
			rc = image_pull(&env, up, j->name, local, &res, &e);
		} else if (rc < 0 && e.code == ENOENT) {
			err_set(&e, ENOENT,
				"image %s is not in the local registry %s and this server pulls "
				"from no other registry",
				j->name, p->local);
		}
	}
	if (rc == 0) {
		j->ok = 1;
		snprintf(j->chain, sizeof j->chain, "%s", res.chain);
		snprintf(j->msg, sizeof j->msg,
			 "image %s is %s (from the %s, %lld MB fetched in %lld ms)", j->name,
			 res.digest, from, (long long)(res.fetched >> 20),
			 (long long)(now_ms() - t0));
		log_info("%s", j->msg);
		int64_t now = (int64_t)time(NULL);
		if (image_gc_touch(p->c, j->name, now, true, &e) < 0)
			log_warn("image %s: %s", j->name, e.msg);
		pthread_mutex_lock(&p->mu);
		struct use_mark *m = use_find(p, j->name, true);
		if (m) {
			m->used_at = now;
			m->written_ms = now_ms();
		}
		p->gc_due = true;
		pthread_mutex_unlock(&p->mu);
		if (res.copy_error[0])
			log_warn("image %s: not copied into the local registry: %s", j->name,
				 res.copy_error);
	} else {
		snprintf(j->msg, sizeof j->msg, "%s", e.msg);
		log_warn("image %s: %s", j->name, e.msg);
	}
}

static void *pull_thread(void *arg)
{
	struct puller *p = arg;
	struct reg_opts o = {
	    .plain_http_hosts = p->plain,
	    .ca_file = p->ca,
	    .creds = p->creds,
	    .ncreds = (size_t)p->ncreds,
	};
	struct err e;
	struct reg_client *reg = reg_client_new(&o, &e);
	if (!reg)
		log_err("puller: %s", e.msg);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct job *j = NULL;
		struct use_mark *m = NULL;
		bool gc = false;
		while (!p->stopping) {
			for (j = p->jobs; j && j->state != JOB_QUEUED; j = j->next)
				;
			if (j)
				break;
			for (m = p->uses; m && !m->write_queued; m = m->next)
				;
			if (m)
				break;
			if (p->gc_on && !p->gc_running &&
			    (p->gc_due || now_ms() >= p->gc_next_ms)) {
				gc = true;
				break;
			}
			if (p->gc_on && !p->gc_running) {
				struct timespec ts = {.tv_sec = p->gc_next_ms / 1000,
						      .tv_nsec = (p->gc_next_ms % 1000) * 1000000};
				pthread_cond_timedwait(&p->cv, &p->mu, &ts);
			} else {
				pthread_cond_wait(&p->cv, &p->mu);
			}
		}
		if (p->stopping)
			break;
		if (m) { /* the label of a use, out of the loop's way */
			m->write_queued = false;
			char name[320];
			snprintf(name, sizeof name, "%s", m->name);
			int64_t at = m->used_at;
			pthread_mutex_unlock(&p->mu);
			struct err te;
			if (image_gc_touch(p->c, name, at, false, &te) < 0)
				log_warn("image %s: %s", name, te.msg);
			pthread_mutex_lock(&p->mu);
			continue;
		}
		if (gc) {
			p->gc_running = true;
			p->gc_due = false;
			pthread_mutex_unlock(&p->mu);
			bool kept = run_gc(p);
			pthread_mutex_lock(&p->mu);
			p->gc_running = false;
			p->gc_next_ms = now_ms() + (int64_t)PULLER_GC_PERIOD_S * 1000;
			/* An image kept only for its grace is looked at again when it ends. */
			int64_t wall = (int64_t)time(NULL);
			for (struct use_mark *um = kept ? p->uses : NULL; um; um = um->next) {
				int64_t left = um->used_at + PULLER_USED_GRACE_S - wall;
				if (left >= 0 && now_ms() + (left + 1) * 1000 < p->gc_next_ms)
					p->gc_next_ms = now_ms() + (left + 1) * 1000;
			}
			p->gc_passes++;
			pthread_cond_broadcast(&p->cv); /* a pass may have become due meanwhile */
			continue;
		}
		j->state = JOB_RUNNING;
		pthread_mutex_unlock(&p->mu);
		if (reg)
			run_job(p, reg, j);
		else
			snprintf(j->msg, sizeof j->msg, "the registry client could not start");
		pthread_mutex_lock(&p->mu);
		/* running -> done list */
		for (struct job **pp = &p->jobs; *pp; pp = &(*pp)->next)
			if (*pp == j) {
				*pp = j->next;
				break;
			}
		j->state = JOB_DONE;
		j->next = p->done;
		p->done = j;
		if (p->gc_due)
			pthread_cond_signal(&p->cv);
		uint64_t one = 1;
		if (write(p->efd, &one, sizeof one) < 0) { /* saturated: readable anyway */
		}
	}
	pthread_mutex_unlock(&p->mu);
	reg_client_free(reg);
	return NULL;
}

/* ---- the loop side ---- */

static void free_job(struct job *j)
{
	while (j->waiters) {
		struct pull_wait *w = j->waiters;
		j->waiters = w->next;
		free(w);
	}
	free(j);
}

static void on_done(void *arg, int fd, unsigned events)
{
	struct puller *p = arg;
	uint64_t n;
	if (read(fd, &n, sizeof n) < 0) { /* spurious wake-up */
	}
	pthread_mutex_lock(&p->mu);
	struct job *done = p->done;
	p->done = NULL;
	struct removed_name *gone = p->removed;
	p->removed = NULL;
	pthread_mutex_unlock(&p->mu);
	while (gone) {
		struct removed_name *rn = gone;
		gone = rn->next;
		if (p->cfg.on_removed)
			p->cfg.on_removed(p->cfg.removed_arg, rn->name);
		free(rn);
	}
	while (done) {
		struct job *j = done;
		done = j->next;
		for (struct pull_wait *w = j->waiters; w; w = w->next)
			if (w->cb)
				w->cb(w->arg, j->ok ? j->chain : NULL, j->msg);
		free_job(j);
	}
}

struct puller *puller_new(const struct puller_config *pc, struct ctr_client *c, struct evloop *ev,
			  struct err *err)
{
	struct puller *p = calloc(1, sizeof *p);
	if (!p) {
		err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	p->cfg = *pc;
	p->c = c;
	p->ev = ev;
	p->efd = -1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* now_ms() is the deadline's clock */
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	p->gc_on = pc->image_unused_ttl_s > 0 || pc->image_store_max > 0;
	p->gc_next_ms = now_ms() + (int64_t)PULLER_GC_PERIOD_S * 1000;
	p->gc_due = p->gc_on; /* a first pass at start */
	p->local = strdup(pc->local_registry ? pc->local_registry : "");
	p->plain = strdup(pc->plain_http ? pc->plain_http : "");
	p->ca = pc->ca_file && *pc->ca_file ? strdup(pc->ca_file) : NULL;
	p->snap = strdup(pc->snapshotter ? pc->snapshotter : "overlayfs");
	p->prefix = strdup(pc->key_prefix ? pc->key_prefix : "vplcell");
	p->keep = pc->default_image && *pc->default_image ? strdup(pc->default_image) : NULL;
	if (!p->local || !p->plain || !p->snap || !p->prefix ||
	    (pc->default_image && *pc->default_image && !p->keep)) {
		err_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	p->ncreds = puller_read_auth(pc->auth_file, &p->creds, &p->credbuf, err);
	if (p->ncreds < 0) {
		p->ncreds = 0;
		goto fail;
	}
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd < 0) {
		err_sys(err, errno, "eventfd");
		goto fail;
	}
	p->watch = ev_watch_fd(ev, p->efd, EV_READ, on_done, p, err);
	if (!p->watch)
		goto fail;
	p->nth = pc->threads > 0 ? pc->threads : 1;
	p->th = calloc((size_t)p->nth, sizeof *p->th);
	if (!p->th) {
		err_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	for (int i = 0; i < p->nth; i++) {
		int rc = pthread_create(&p->th[i], NULL, pull_thread, p);
		if (rc != 0) {
			err_sys(err, rc, "starting a pull thread");
			p->nth = i;
			goto fail;
		}
	}
	return p;
fail:
	puller_free(p);
	return NULL;
}

void puller_free(struct puller *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nth; i++)
		pthread_join(p->th[i], NULL);
	free(p->th);
	while (p->jobs) {
		struct job *j = p->jobs;
		p->jobs = j->next;
		free_job(j);
	}
	while (p->done) {
		struct job *j = p->done;
		p->done = j->next;
		free_job(j);
	}
	while (p->uses) {
		struct use_mark *m = p->uses;
		p->uses = m->next;
		free(m->name);
		free(m);
	}
	while (p->removed) {
		struct removed_name *rn = p->removed;
		p->removed = rn->next;
		free(rn);
	}
	while (p->marks) {
		struct force_mark *m = p->marks;
		p->marks = m->next;
		free(m->name);
		free(m);
	}
	if (p->watch)
		ev_unwatch(p->watch);
	if (p->efd >= 0)
		close(p->efd);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->creds);
	free(p->credbuf);
	free(p->local);
	free(p->plain);
	free(p->ca);
	free(p->snap);
	free(p->prefix);
	free(p->keep);
	free(p);
}

static struct pull_wait *add_job(struct puller *p, const struct image_source *src, const char *name,
				 const char *user, bool force, puller_cb cb, void *arg,
				 struct err *err);

struct pull_wait *puller_ensure(struct puller *p, const struct image_source *src, const char *name,
				bool force, puller_cb cb, void *arg, struct err *err)
{
	return add_job(p, src, name, "", force, cb, arg, err);
}

struct pull_wait *puller_user(struct puller *p, const char *name, const char *user, puller_cb cb,
			      void *arg, struct err *err)
{
	if (!user || !*user || strlen(user) > 32) {
		err_set(err, EINVAL, "bad user name");
		return NULL;
	}
	struct image_source none;
	memset(&none, 0, sizeof none);
	return add_job(p, &none, name, user, false, cb, arg, err);
}

static struct pull_wait *add_job(struct puller *p, const struct image_source *src, const char *name,
				 const char *user, bool force, puller_cb cb, void *arg,
				 struct err *err)
{
	struct pull_wait *w = calloc(1, sizeof *w);
	if (!w) {
		err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	w->cb = cb;
	w->arg = arg;
	pthread_mutex_lock(&p->mu);
	struct job *j;
	for (j = p->jobs; j; j = j->next)
		if (strcmp(j->name, name) == 0 && strcmp(j->user, user) == 0)
			break;
	if (!j) {
		j = calloc(1, sizeof *j);
		if (!j) {
			pthread_mutex_unlock(&p->mu);
			free(w);
			err_set(err, ENOMEM, "out of memory");
			return NULL;
		}
		snprintf(j->name, sizeof j->name, "%s", name);
		snprintf(j->user, sizeof j->user, "%s", user);
		j->p = p;
		j->src = *src;
		j->force = force;
		j->state = JOB_QUEUED;
		j->next = p->jobs;
		p->jobs = j;
		if (!user[0])
			p->pulls++;
		pthread_cond_signal(&p->cv);
	}
	w->next = j->waiters;
	j->waiters = w;
	pthread_mutex_unlock(&p->mu);
	return w;
}

void puller_cancel(struct pull_wait *w)
{
	if (w)
		w->cb = NULL;
}

bool puller_force_due(struct puller *p, const char *name)
{
	int64_t now = now_ms();
	struct force_mark *m;
	for (m = p->marks; m; m = m->next)
		if (strcmp(m->name, name) == 0)
			break;
	if (m && now - m->at_ms < (int64_t)p->cfg.forcepull_ttl_s * 1000)
		return false;
	if (!m) {
		m = calloc(1, sizeof *m);
		if (!m || !(m->name = strdup(name))) {
			free(m);
			return true;
		}
		m->next = p->marks;
		p->marks = m;
	}
	m->at_ms = now;
	return true;
}

void puller_used(struct puller *p, const char *name)
{
	int64_t now = now_ms();
	pthread_mutex_lock(&p->mu);
	struct use_mark *m = use_find(p, name, true);
	if (m) {
		m->used_at = (int64_t)time(NULL);
		if (!m->write_queued &&
		    (m->written_ms == 0 || now - m->written_ms >= PULLER_USED_WRITE_S * 1000LL)) {
			m->write_queued = true;
			m->written_ms = now;
			pthread_cond_signal(&p->cv);
		}
	}
	pthread_mutex_unlock(&p->mu);
}

void puller_gc_now(struct puller *p)
{
	pthread_mutex_lock(&p->mu);
	if (p->gc_on) {
		p->gc_due = true;
		pthread_cond_signal(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
}

uint64_t puller_gc_passes(struct puller *p)
{
	pthread_mutex_lock(&p->mu);
	uint64_t n = p->gc_passes;
	pthread_mutex_unlock(&p->mu);
	return n;
}

uint64_t puller_pulls(const struct puller *p)
{
	return p->pulls;
}

bool puller_progress(struct puller *p, const char *name, char *out, size_t n)
{
	bool found = false;
	pthread_mutex_lock(&p->mu);
	for (struct job *j = p->jobs; j; j = j->next)
		if (!j->user[0] && strcmp(j->name, name) == 0 && j->progress[0]) {
			snprintf(out, n, "%s", j->progress);
			found = true;
			break;
		}
	pthread_mutex_unlock(&p->mu);
	return found;
}
