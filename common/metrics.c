#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

const double metrics_latency_bounds[METRICS_LATENCY_NBOUNDS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};

enum kind { K_COUNTER, K_GAUGE, K_HISTOGRAM };

static const char OTHER[] = "other";

struct metric_child {
	struct metric *f;
	const char *values[METRICS_MAX_LABELS]; /* point into vstore */
	char *vstore;
	_Atomic uint64_t count;	    /* counter */
	_Atomic int64_t gauge;	    /* gauge */
	_Atomic uint64_t sum_bits;  /* histogram: the bits of a double */
	_Atomic uint64_t buckets[]; /* histogram: nbounds + 1, not cumulative */
};

struct metric {
	struct metric *next;
	enum kind kind;
	char *name;
	char *help;
	size_t nlabels;
	char *labels[METRICS_MAX_LABELS];
	size_t nbounds;
	double bounds[METRICS_MAX_BUCKETS];
	/* Serialises child creation only. Readers scan children[0..nchildren):
	 * a slot is written before nchildren is release-stored past it and never
	 * changes afterwards, so an acquire load of nchildren makes the scan safe
	 * without the lock. */
	pthread_mutex_t lock;
	_Atomic size_t nchildren;
	struct metric_child *children[METRICS_MAX_CHILDREN];
	struct metric_child *other; /* overflow child; NULL without labels */
	atomic_bool other_used;
};

struct metrics {
	struct metric *head;
	struct metric **tail;
};

struct metrics *metrics_new(void)
{
	struct metrics *m = calloc(1, sizeof *m);
	if (m)
		m->tail = &m->head;
	return m;
}

static void child_free(struct metric_child *c)
{
	if (c) {
		free(c->vstore);
		free(c);
	}
}

static void family_free(struct metric *f)
{
	size_t n = atomic_load(&f->nchildren);
	for (size_t i = 0; i < n; i++)
		child_free(f->children[i]);
	child_free(f->other);
	for (size_t i = 0; i < f->nlabels; i++)
		free(f->labels[i]);
	free(f->name);
	free(f->help);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	for (struct metric *f = m->head, *next; f; f = next) {
		next = f->next;
		family_free(f);
	}
	free(m);
}

/* ---- registration ---- */

static bool name_ok(const char *s, bool colon)
{
	if (!s || !*s)
		return false;
	for (const char *p = s; *p; p++) {
		char ch = *p;
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
			  (colon && ch == ':') || (p > s && ch >= '0' && ch <= '9');
		if (!ok)
			return false;
	}
	return true;
}

static struct metric_child *child_new(struct metric *f, const char *const *values)
{
	size_t nb = f->kind == K_HISTOGRAM ? f->nbounds + 1 : 0;
	struct metric_child *c = calloc(1, sizeof *c + nb * sizeof c->buckets[0]);
	if (!c)
		return NULL;
	c->f = f;
	size_t total = 1;
	for (size_t i = 0; i < f->nlabels; i++)
		total += strlen(values && values[i] ? values[i] : "") + 1;
	c->vstore = malloc(total);
	if (!c->vstore) {
		free(c);
		return NULL;
	}
	char *p = c->vstore;
	for (size_t i = 0; i < f->nlabels; i++) {
		const char *v = values && values[i] ? values[i] : "";
		size_t l = strlen(v) + 1;
		memcpy(p, v, l);
		c->values[i] = p;
		p += l;
	}
	atomic_init(&c->count, 0);
	atomic_init(&c->gauge, 0);
	double zero = 0;
	uint64_t bits;
	memcpy(&bits, &zero, sizeof bits);
	atomic_init(&c->sum_bits, bits);
	for (size_t i = 0; i < nb; i++)
		atomic_init(&c->buckets[i], 0);
	return c;
}

static struct metric *family_new(struct metrics *m, enum kind kind, const char *name,
				 const char *help, const char *const *labels, const double *bounds,
				 size_t nbounds)
{
	if (!m || !name_ok(name, true))
		return NULL;
	for (struct metric *g = m->head; g; g = g->next)
		if (strcmp(g->name, name) == 0)
			return NULL;
	size_t nl = 0;
	while (labels && labels[nl]) {
		const char *l = labels[nl];
		if (nl == METRICS_MAX_LABELS || !name_ok(l, false) || strncmp(l, "__", 2) == 0 ||
		    (kind == K_HISTOGRAM && strcmp(l, "le") == 0))
			return NULL;
		for (size_t k = 0; k < nl; k++)
			if (strcmp(labels[k], l) == 0)
				return NULL;
		nl++;
	}
	if (kind == K_HISTOGRAM) {
		if (nbounds > METRICS_MAX_BUCKETS || (nbounds && !bounds))
			return NULL;
		for (size_t i = 0; i < nbounds; i++)
			if (!isfinite(bounds[i]) || (i && !(bounds[i] > bounds[i - 1])))
				return NULL;
	}

	struct metric *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	if (pthread_mutex_init(&f->lock, NULL) != 0) {
		free(f);
		return NULL;
	}
	atomic_init(&f->nchildren, 0);
	atomic_init(&f->other_used, false);
	f->kind = kind;
	f->name = strdup(name);
	f->help = strdup(help ? help : "");
	bool ok = f->name && f->help;
	for (size_t i = 0; i < nl; i++) {
		f->labels[i] = strdup(labels[i]);
		ok = ok && f->labels[i];
	}
	f->nlabels = nl;
	if (kind == K_HISTOGRAM) {
		f->nbounds = nbounds;
		if (nbounds)
			memcpy(f->bounds, bounds, nbounds * sizeof bounds[0]);
	}
	if (ok && nl == 0) {
		/* The one child exists from the start, so it renders as 0. */
		f->children[0] = child_new(f, NULL);
		ok = f->children[0] != NULL;
		if (ok)
			atomic_store(&f->nchildren, 1);
	} else if (ok) {
		const char *vals[METRICS_MAX_LABELS];
		for (size_t i = 0; i < nl; i++)
			vals[i] = OTHER;
		f->other = child_new(f, vals);
		ok = f->other != NULL;
	}
	if (!ok) {
		family_free(f);
		return NULL;
	}
	*m->tail = f;
	m->tail = &f->next;
	return f;
}

struct metric *metrics_counter(struct metrics *m, const char *name, const char *help,
			       const char *const *labels)
{
	return family_new(m, K_COUNTER, name, help, labels, NULL, 0);
}

struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help,
			     const char *const *labels)
{
	return family_new(m, K_GAUGE, name, help, labels, NULL, 0);
}

struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help,
				 const char *const *labels, const double *bounds, size_t nbounds)
{
	return family_new(m, K_HISTOGRAM, name, help, labels, bounds, nbounds);
}

/* ---- lookup ---- */

static bool child_matches(const struct metric_child *c, const char *const *values, size_t nl)
{
	for (size_t i = 0; i < nl; i++) {
		const char *v = values && values[i] ? values[i] : "";
		if (strcmp(c->values[i], v) != 0)
			return false;
	}
	return true;
}

static struct metric_child *find(struct metric *f, const char *const *values, size_t from, size_t n)
{
	for (size_t i = from; i < n; i++)
		if (child_matches(f->children[i], values, f->nlabels))
			return f->children[i];
	return NULL;
}

static struct metric_child *use_other(struct metric *f)
{
	/* Load first so the hot path does not keep writing a shared line. */
	if (!atomic_load_explicit(&f->other_used, memory_order_relaxed))
		atomic_store_explicit(&f->other_used, true, memory_order_relaxed);
	return f->other;
}

struct metric_child *metric_child(struct metric *f, const char *const *values)
{
	if (f->nlabels == 0)
		return f->children[0];
	size_t n = atomic_load_explicit(&f->nchildren, memory_order_acquire);
	struct metric_child *c = find(f, values, 0, n);
	if (c)
		return c;
	if (child_matches(f->other, values, f->nlabels))
		return use_other(f);

	pthread_mutex_lock(&f->lock);
	/* Another thread may have created it since the scan above. */
	size_t n2 = atomic_load_explicit(&f->nchildren, memory_order_relaxed);
	c = find(f, values, n, n2);
	if (!c && n2 < METRICS_MAX_CHILDREN) {
		c = child_new(f, values);
		if (c) {
			f->children[n2] = c;
			atomic_store_explicit(&f->nchildren, n2 + 1, memory_order_release);
		}
	}
	pthread_mutex_unlock(&f->lock);
	return c ? c : use_other(f);
}

/* ---- updates ---- */

/* Rounds half away from zero without libm; false for NaN. Saturates. */
static bool to_i64(double v, int64_t *out)
{
	if (isnan(v))
		return false;
	if (v >= 0x1p63)
		*out = INT64_MAX;
	else if (v <= -0x1p63)
		*out = INT64_MIN;
	else
		*out = v >= 0 ? (int64_t)(v + 0.5) : -(int64_t)(-v + 0.5);
	return true;
}

void metric_child_inc(struct metric_child *c)
{
	if (c->f->kind == K_COUNTER)
		atomic_fetch_add_explicit(&c->count, 1, memory_order_relaxed);
	else if (c->f->kind == K_GAUGE)
		atomic_fetch_add_explicit(&c->gauge, 1, memory_order_relaxed);
}

void metric_child_add(struct metric_child *c, double v)
{
	if (c->f->kind == K_COUNTER) {
		if (!(v >= 0) || isinf(v))
			return;
		uint64_t n = v >= 0x1p64 ? UINT64_MAX : (uint64_t)(v + 0.5);
		atomic_fetch_add_explicit(&c->count, n, memory_order_relaxed);
	} else if (c->f->kind == K_GAUGE) {
		int64_t n;
		if (to_i64(v, &n))
			atomic_fetch_add_explicit(&c->gauge, n, memory_order_relaxed);
	}
}

void metric_child_set(struct metric_child *c, double v)
{
	int64_t n;
	if (c->f->kind == K_GAUGE && to_i64(v, &n))
		atomic_store_explicit(&c->gauge, n, memory_order_relaxed);
}

void metric_child_observe(struct metric_child *c, double v)
{
	const struct metric *f = c->f;
	if (f->kind != K_HISTOGRAM || isnan(v))
		return;
	size_t i = 0;
	while (i < f->nbounds && !(v <= f->bounds[i]))
		i++;
	atomic_fetch_add_explicit(&c->buckets[i], 1, memory_order_relaxed);
	uint64_t old = atomic_load_explicit(&c->sum_bits, memory_order_relaxed), nw;
	do {
		double d;
		memcpy(&d, &old, sizeof d);
		d += v;
		memcpy(&nw, &d, sizeof nw);
	} while (!atomic_compare_exchange_weak_explicit(
	    &c->sum_bits, &old, nw, memory_order_relaxed, memory_order_relaxed));
}

void metric_inc(struct metric *f, const char *const *values)
{
	metric_child_inc(metric_child(f, values));
}

void metric_add(struct metric *f, const char *const *values, double v)
{
	metric_child_add(metric_child(f, values), v);
}

void metric_set(struct metric *f, const char *const *values, double v)
{
	metric_child_set(metric_child(f, values), v);
}

void metric_observe(struct metric *f, const char *const *values, double v)
{
	metric_child_observe(metric_child(f, values), v);
}

/* ---- rendering ---- */

/* Shortest "%g" text that reads back as v; Prometheus spellings for the
 * specials. */
static void fmt_double(char *out, size_t outsz, double v)
{
	if (isnan(v)) {
		snprintf(out, outsz, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(out, outsz, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(out, outsz, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

/* Appends s escaped for a label value (quote) or a HELP text: backslash and
 * newline always, '"' in label values; invalid UTF-8 becomes U+FFFD so the
 * exposition stays valid UTF-8. */
static int put_escaped(struct buf *out, const char *s, bool quote, struct err *err)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), run = 0;
	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq_len(p + i, n - i);
		const char *rep = NULL;
		if (l == 0)
			rep = "\xEF\xBF\xBD";
		else if (p[i] == '\\')
			rep = "\\\\";
		else if (p[i] == '\n')
			rep = "\\n";
		else if (quote && p[i] == '"')
			rep = "\\\"";
		if (!rep) {
			i += l;
			continue;
		}
		if (buf_append(out, p + run, i - run, err) < 0 || buf_puts(out, rep, err) < 0)
			return -1;
		i += l ? l : 1;
		run = i;
	}
	return buf_append(out, p + run, n - run, err);
}

/* name{l1="v1",...[,le="b"]} - the series name and labels, no value. */
static int put_series(struct buf *out, const struct metric *f, const struct metric_child *c,
		      const char *suffix, const char *le, struct err *err)
{
	if (buf_puts(out, f->name, err) < 0 || buf_puts(out, suffix, err) < 0)
		return -1;
	if (f->nlabels == 0 && !le)
		return 0;
	if (buf_puts(out, "{", err) < 0)
		return -1;
	for (size_t i = 0; i < f->nlabels; i++) {
		if (buf_printf(out, err, "%s%s=\"", i ? "," : "", f->labels[i]) < 0 ||
		    put_escaped(out, c->values[i], true, err) < 0 || buf_puts(out, "\"", err) < 0)
			return -1;
	}
	if (le && buf_printf(out, err, "%sle=\"%s\"", f->nlabels ? "," : "", le) < 0)
		return -1;
	return buf_puts(out, "}", err);
}

static int render_child(struct buf *out, const struct metric *f, struct metric_child *c,
			struct err *err)
{
	switch (f->kind) {
	case K_COUNTER:
		return put_series(out, f, c, "", NULL, err) < 0
			   ? -1
			   : buf_printf(out, err, " %" PRIu64 "\n",
					atomic_load_explicit(&c->count, memory_order_relaxed));
	case K_GAUGE:
		return put_series(out, f, c, "", NULL, err) < 0
			   ? -1
			   : buf_printf(out, err, " %" PRId64 "\n",
					atomic_load_explicit(&c->gauge, memory_order_relaxed));
	case K_HISTOGRAM:
		break;
	}
	char num[40];
	uint64_t cum = 0;
	for (size_t i = 0; i <= f->nbounds; i++) {
		cum += atomic_load_explicit(&c->buckets[i], memory_order_relaxed);
		if (i < f->nbounds)
			fmt_double(num, sizeof num, f->bounds[i]);
		else
			snprintf(num, sizeof num, "+Inf");
		if (put_series(out, f, c, "_bucket", num, err) < 0 ||
		    buf_printf(out, err, " %" PRIu64 "\n", cum) < 0)
			return -1;
	}
	uint64_t bits = atomic_load_explicit(&c->sum_bits, memory_order_relaxed);
	double sum;
	memcpy(&sum, &bits, sizeof sum);
	fmt_double(num, sizeof num, sum);
	if (put_series(out, f, c, "_sum", NULL, err) < 0 || buf_printf(out, err, " %s\n", num) < 0)
		return -1;
	/* _count from the same bucket reads, so it always equals le="+Inf". */
	if (put_series(out, f, c, "_count", NULL, err) < 0 ||
	    buf_printf(out, err, " %" PRIu64 "\n", cum) < 0)
		return -1;
	return 0;
}

int metrics_render(struct metrics *m, struct buf *out, struct err *err)
{
	static const char *const type[] = {"counter", "gauge", "histogram"};
	for (struct metric *f = m->head; f; f = f->next) {
		if (f->help[0] &&
		    (buf_printf(out, err, "# HELP %s ", f->name) < 0 ||
		     put_escaped(out, f->help, false, err) < 0 || buf_puts(out, "\n", err) < 0))
			return -1;
		if (buf_printf(out, err, "# TYPE %s %s\n", f->name, type[f->kind]) < 0)
			return -1;
		size_t n = atomic_load_explicit(&f->nchildren, memory_order_acquire);
		for (size_t i = 0; i < n; i++)
			if (render_child(out, f, f->children[i], err) < 0)
				return -1;
		if (f->other && atomic_load_explicit(&f->other_used, memory_order_relaxed) &&
		    render_child(out, f, f->other, err) < 0)
			return -1;
	}
	return 0;
}
