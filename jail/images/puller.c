/*
 * puller.c - see puller.h.
 *
 * Jobs live in one list under `mu`: QUEUED -> RUNNING (a pull thread) -> DONE (moved to the
 * done list, eventfd written) -> the loop runs the waiters and frees the job. Waiters belong
 * to their job and are touched only by the loop thread.
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

/* ---- the pull thread ---- */

static void progress_log(void *arg, const char *what)
{
	log_debug("pull %s: %s", (const char *)arg, what);
}

static void run_job(struct puller *p, struct reg_client *reg, struct job *j)
{
	struct pull_env env = {
	    .c = p->c,
	    .reg = reg,
	    .snapshotter = p->snap,
	    .key_prefix = p->prefix,
	    .max_image_size = p->cfg.max_image_size,
	    .progress = progress_log,
	    .parg = j->name,
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
		while (!p->stopping) {
			for (j = p->jobs; j && j->state != JOB_QUEUED; j = j->next)
				;
			if (j)
				break;
			pthread_cond_wait(&p->cv, &p->mu);
		}
		if (p->stopping)
			break;
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
	pthread_mutex_unlock(&p->mu);
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
	pthread_cond_init(&p->cv, NULL);
	p->local = strdup(pc->local_registry ? pc->local_registry : "");
	p->plain = strdup(pc->plain_http ? pc->plain_http : "");
	p->ca = pc->ca_file && *pc->ca_file ? strdup(pc->ca_file) : NULL;
	p->snap = strdup(pc->snapshotter ? pc->snapshotter : "overlayfs");
	p->prefix = strdup(pc->key_prefix ? pc->key_prefix : "vplcell");
	if (!p->local || !p->plain || !p->snap || !p->prefix) {
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
	free(p);
}

struct pull_wait *puller_ensure(struct puller *p, const struct image_source *src, const char *name,
				bool force, puller_cb cb, void *arg, struct err *err)
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
		if (strcmp(j->name, name) == 0)
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
		j->src = *src;
		j->force = force;
		j->state = JOB_QUEUED;
		j->next = p->jobs;
		p->jobs = j;
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

uint64_t puller_pulls(const struct puller *p)
{
	return p->pulls;
}
