/* tables.h - the report's tables as data files beside index.html: fits.csv, ceg.csv, claims.csv
 * and report.json (docs/FORMATS.md). CSV text fields are quoted with "" doubling (RFC 4180);
 * JSON strings are escaped by core/json.h. */
#ifndef AP_TABLES_H
#define AP_TABLES_H

#include "core/status.h"
#include "report/claims.h"
#include "report/results.h"

int tables_write(const Results *r, const ClaimResult *claims, int n_claims, const char *dir, Status *st);

#endif
