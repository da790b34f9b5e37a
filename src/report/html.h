/* html.h - the report page: one self-contained HTML file (inline CSS and SVG, no network). */
#ifndef AP_HTML_H
#define AP_HTML_H

#include "core/strbuf.h"
#include "report/claims.h"
#include "report/report.h"
#include "report/results.h"
#include "report/samples.h"

/* Sections in order: claims, loss against compute, CEGs, ablations, IsoFLOP profiles, frontiers,
 * samples (samples[arm], may be NULL), runs, methods, accounting. */
void html_render(const Results *r, const ClaimResult *claims, int n_claims, const ArmSample *samples,
                 const ReportOptions *o, StrBuf *b);

#endif
