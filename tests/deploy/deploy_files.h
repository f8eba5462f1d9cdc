/* Expressions of deploy/: every PromQL "expr" of the Grafana dashboard (and its templating
 * queries) and of the Prometheus alert rules. */
#ifndef ITS_DEPLOY_FILES_H
#define ITS_DEPLOY_FILES_H

#include <stddef.h>

#define DEPLOY_MAX_EXPRS 256

typedef struct expr_list {
    char *items[DEPLOY_MAX_EXPRS]; /* its_malloc'd */
    int n;
} expr_list;

/* Panel target "expr" strings (panels_only) or those plus templating queries. 0 or < 0. */
int deploy_dashboard_exprs(const char *path, int panels_only, expr_list *out);
/* The expr: values of a rules file (single-line and "|" blocks). */
int deploy_rules_exprs(const char *path, expr_list *out);
void expr_list_free(expr_list *l);

#endif
