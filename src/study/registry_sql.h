/* registry_sql.h - private to the registry's files (registry.c writes, registry_read.c reads):
 * the handle and the checked-statement helpers. Nothing outside src/study/registry*.c includes
 * sqlite3.h. */
#ifndef AP_REGISTRY_SQL_H
#define AP_REGISTRY_SQL_H

#include "study/registry.h"

#include <sqlite3.h>
#include <stddef.h>

struct Registry {
    sqlite3 *db;
    char path[1100];
    int readonly;
    int busy_ms; /* how long a statement waits for another process's lock before failing */
};

/* A prepared statement whose binds are checked once, by the step that uses them. */
typedef struct {
    Registry *r;
    sqlite3_stmt *q;
    int bind_rc;
    const char *op;
} Stmt;

/* An error of operation `op`, in words a user can act on (damaged file, full disk, read-only). */
int reg_fail(Registry *r, Status *st, const char *op);
int reg_exec(Registry *r, const char *sql, const char *op, Status *st);
void reg_rollback(Registry *r);
int reg_prep(Registry *r, Stmt *s, const char *sql, const char *op, Status *st);
void reg_bind_int(Stmt *s, int i, long long v);
void reg_bind_text(Stmt *s, int i, const char *v); /* NULL binds NULL */
void reg_bind_num(Stmt *s, int i, double v);        /* NaN binds NULL (an unknown value) */
/* 1: a row, 0: done, -1: error (st set; a failed bind is reported here). */
int reg_step(Stmt *s, Status *st);
void reg_reset(Stmt *s);
void reg_finalize(Stmt *s);
/* Steps a statement that returns no rows and finalizes it. */
int reg_run1(Stmt *s, Status *st);
double reg_col_num(sqlite3_stmt *q, int i); /* NULL reads as NaN */
void reg_col_text(sqlite3_stmt *q, int i, char *dst, size_t size);
char *reg_col_dup(sqlite3_stmt *q, int i);
int reg_status_of(const char *name);

#endif
