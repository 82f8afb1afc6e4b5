#include "jail_metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "metrics.h"
#include "metrics_http.h"
#include "tasks.h"

struct jail_metrics {
	struct metrics *reg;
	struct metrics_http *http;
	struct metric *requests, *latency, *sockets, *tasks;
	struct metric_child *monitor, *execute;
};

int jail_metrics_init(struct jail *j, struct err *err)
{
	struct jail_metrics *m = calloc(1, sizeof *m);
	if (!m || !(m->reg = metrics_new())) {
		free(m);
		return err_sys(err, ENOMEM, "metrics");
	}
	j->metrics = m;
	m->requests = metrics_counter(m->reg, "vplcell_jail_requests_total",
				      "RPC requests answered, by method and HTTP status",
				      (const char *const[]){"method", "status", NULL});
	m->latency = metrics_histogram(m->reg, "vplcell_jail_request_duration_seconds",
				       "RPC handling time", (const char *const[]){"method", NULL},
				       metrics_latency_bounds, METRICS_LATENCY_NBOUNDS);
	m->sockets =
	    metrics_gauge(m->reg, "vplcell_jail_websocket_sessions",
			  "Open monitor and execute sockets", (const char *const[]){"kind", NULL});
	m->tasks = metrics_gauge(m->reg, "vplcell_jail_tasks", "Tasks in the task table", NULL);
	if (!m->requests || !m->latency || !m->sockets || !m->tasks) {
		jail_metrics_free(j);
		return err_set(err, EINVAL, "registering metrics");
	}
	m->monitor = metric_child(m->sockets, (const char *const[]){"monitor"});
	m->execute = metric_child(m->sockets, (const char *const[]){"execute"});
	if (j->cfg.metrics_port) {
		const char *a = j->cfg.metrics_address ? j->cfg.metrics_address : "127.0.0.1";
		m->http = metrics_http_start(m->reg, a, j->cfg.metrics_port, 0, err);
		if (!m->http) {
			jail_metrics_free(j);
			return err_wrap(err, "METRICS_PORT %d", j->cfg.metrics_port);
		}
	}
	return 0;
}

void jail_metrics_free(struct jail *j)
{
	struct jail_metrics *m = j->metrics;
	if (!m)
		return;
	metrics_http_stop(m->http);
	metrics_free(m->reg);
	free(m);
	j->metrics = NULL;
}

void jail_metrics_request(struct jail *j, const char *method, int status, int64_t ms)
{
	struct jail_metrics *m = j->metrics;
	if (!m)
		return;
	char code[8];
	snprintf(code, sizeof code, "%d", status);
	metric_inc(m->requests, (const char *const[]){method, code});
	metric_observe(m->latency, (const char *const[]){method}, (double)ms / 1000.0);
	if (j->tasks)
		metric_set(m->tasks, NULL, (double)task_count(j->tasks));
}

void jail_metrics_ws(struct jail *j, bool monitor, int delta)
{
	struct jail_metrics *m = j->metrics;
	if (m)
		metric_child_add(monitor ? m->monitor : m->execute, delta);
}
