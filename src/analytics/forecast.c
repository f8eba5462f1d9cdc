/*
 * Holt's linear exponential smoothing (level + trend) for per-minute flow, with the error of
 * each horizon tracked against what actually happened: every forecast made is kept for 60
 * steps in a ring and compared once its horizon has passed.
 */
#include <math.h>
#include <string.h>

#include "its/analytics.h"

#define RING 64

void its_forecast_init(its_forecast *f, double alpha, double beta)
{
    memset(f, 0, sizeof *f);
    f->alpha = alpha;
    f->beta = beta;
    f->next1 = NAN;
}

double its_forecast_mean_ahead(const its_forecast *f, int h)
{
    if (f->n < 2 || h < 1)
        return NAN;
    /* mean over k = 1..h of (level + k trend) */
    double v = f->level + f->trend * (h + 1) * 0.5;
    return v < 0 ? 0 : v;
}

/* Mean of the last h observations (the actual outcome of an h-step-mean forecast). */
static double recent_mean(const its_forecast *f, int h)
{
    double s = 0;
    for (int k = 0; k < h; k++)
        s += f->hist[(f->n - 1 - (uint64_t)k) % RING];
    return s / h;
}

void its_forecast_add(its_forecast *f, double x)
{
    if (!isfinite(x))
        return;
    if (isfinite(f->next1)) {
        f->abs_err1 += fabs(x - f->next1);
        f->n_err1++;
    }
    if (f->n == 0) {
        f->level = x;
        f->trend = 0;
    } else if (f->n == 1) {
        f->trend = x - f->level;
        f->level = x;
    } else {
        double prev = f->level;
        f->level = f->alpha * x + (1 - f->alpha) * (f->level + f->trend);
        f->trend = f->beta * (f->level - prev) + (1 - f->beta) * f->trend;
    }
    f->hist[f->n % RING] = x;
    f->n++;
    /* Forecasts made 15 (60) observations ago are due now. */
    if (f->n >= 17) {
        double pred = f->f15[(f->n - 16) % RING];
        if (isfinite(pred)) {
            f->abs_err15 += fabs(recent_mean(f, 15) - pred);
            f->n_err15++;
        }
    }
    if (f->n >= 62) {
        double pred = f->f60[(f->n - 61) % RING];
        if (isfinite(pred)) {
            f->abs_err60 += fabs(recent_mean(f, 60) - pred);
            f->n_err60++;
        }
    }
    f->f15[(f->n - 1) % RING] = its_forecast_mean_ahead(f, 15);
    f->f60[(f->n - 1) % RING] = its_forecast_mean_ahead(f, 60);
    f->next1 = f->n >= 2 ? f->level + f->trend : NAN;
}

double its_forecast_mae(const its_forecast *f, int horizon)
{
    if (horizon == 1)
        return f->n_err1 ? f->abs_err1 / (double)f->n_err1 : NAN;
    if (horizon == 15)
        return f->n_err15 ? f->abs_err15 / (double)f->n_err15 : NAN;
    if (horizon == 60)
        return f->n_err60 ? f->abs_err60 / (double)f->n_err60 : NAN;
    return NAN;
}
