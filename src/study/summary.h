/* summary.h - a study's state for people and for other tools: `study status` and `study export`. */
#ifndef AP_SUMMARY_H
#define AP_SUMMARY_H

#include "core/status.h"

#include <stdio.h>

/* Progress, every run (arm, budget, seed, size, status, loss) and every arm's learning rate. */
int study_status(const char *out_dir, FILE *out, Status *st);
/* The lock of a study directory's own files (DIR/report.lock): `report` and `study export` hold
 * it while they write, so two of them never mix their files. Fails naming the holder's pid. */
#define STUDY_FILES_LOCK "report.lock"
int study_files_lock(const char *out_dir, int *fd, Status *st);
/* Writes DIR/runs.csv and DIR/metrics.csv (csv) or DIR/study.json (json); to_dir NULL means DIR. */
int study_export(const char *out_dir, const char *to_dir, int json, int quiet, Status *st);

#endif
